"""Imports done in the background while the main thread waits on the network.

A command's first network calls (IMS token, then the DLZ credentials) are two sequential
round trips of a few hundred milliseconds on real AEP. The modules the next step needs
(render: jinja2) can be imported meanwhile: the waiting thread holds no GIL, so their
import time leaves the critical path. Started right before the wait, not earlier: while
the main thread is itself busy (config, imports), a second importing thread only competes
with it for the one GIL.
"""

from __future__ import annotations

import importlib
import threading


def import_in_background(*modules: str) -> None:
    """Import `modules` on a daemon thread; a failure is left for the main thread's own import to raise."""

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # reported by the main thread where the module is really used
                continue

    threading.Thread(target=run, name="warm-imports", daemon=True).start()
