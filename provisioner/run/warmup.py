"""Work done in the background while the main thread waits on the network, and work
started now whose result is waited for later (`in_thread`).

A command's first network calls (IMS token, then the DLZ credentials) are two sequential
round trips of a few hundred milliseconds on real AEP. What the next step needs (render:
importing jinja2 and compiling the templates, ~60 ms of CPU) can be done meanwhile: the
waiting thread holds no GIL, so that time leaves the critical path. Started right before
the wait, not earlier: while the main thread is itself busy (config, imports), a second
thread only competes with it for the one GIL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def in_background(work: Callable[[], object]) -> None:
    """Run `work` on a daemon thread; a failure is left for the main thread to meet (and report)
    itself, when it does the same work."""
    in_thread(work, "warm-up")


def in_thread(work: Callable[[], T], name: str) -> Callable[[], T]:
    """Start `work` on a daemon thread of its own; call the result to wait for its value (or
    to meet its failure, raised in the caller)."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(work())
        except BaseException as exc:  # handed to whoever waits for the result
            done.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return done.result
