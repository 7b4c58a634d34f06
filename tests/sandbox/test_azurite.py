"""The Azurite child (provisioner/sandbox/azurite.py): where it listens is the port it bound."""

from __future__ import annotations

import base64
import sys
import urllib.error
import urllib.request
from pathlib import Path

from provisioner.sandbox.azurite import AzuriteProcess
from provisioner.sandbox.blob import SERVER_BUSY, AzuriteDlz
from provisioner.sandbox.store import SandboxStore
from tests.helpers.sandbox import require_azurite

# Stands in for another process whose connection took a port between the moment it was chosen and
# node's bind: it holds the port named by --blobPort, then becomes Azurite with the socket held.
STRANGER = """#!{python}
import os, socket, sys
port = int(sys.argv[sys.argv.index("--blobPort") + 1])
held = socket.socket()
held.bind(("127.0.0.1", port))
held.listen()
os.set_inheritable(held.fileno(), True)
os.execv({azurite!r}, [{azurite!r}, *sys.argv[1:]])
"""


def _served_by_azurite(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/acct?comp=list", timeout=10) as answer:
            server = str(answer.headers.get("Server", ""))
    except urllib.error.HTTPError as refused:  # unsigned: Azurite answers 403, in its own name
        server = str(refused.headers.get("Server", ""))
    return server.startswith("Azurite-Blob")


def test_a_port_taken_before_azurite_binds_does_not_stop_it(tmp_path: Path) -> None:
    """Start and restart survive a port taken in the meantime: Azurite binds what the kernel gives it.

    With a port chosen in advance (as before), the stranger holds it and Azurite exits with
    `listen EADDRINUSE`, so `start` raised AzuriteError — the probe then answered InternalError."""
    wrapper = tmp_path / "azurite-blob"
    wrapper.write_text(STRANGER.format(python=sys.executable, azurite=str(require_azurite())))
    wrapper.chmod(0o755)
    process = AzuriteProcess(wrapper)
    accounts = {"acct": base64.b64encode(b"k" * 32).decode()}
    try:
        process.start(accounts)
        first = process.port
        assert _served_by_azurite(first)
        process.start(accounts)  # a restart (new accounts) binds afresh too
        assert process.port != 0 and _served_by_azurite(process.port)
    finally:
        process.stop()


def test_a_probe_while_azurite_cannot_start_answers_why(tmp_path: Path) -> None:
    """The cluster's listing fails as on a busy storage service, naming Azurite's last words,
    instead of an emulator error that says only `AzuriteError` (what stop 31's CI run showed)."""
    broken = tmp_path / "azurite-blob"
    broken.write_text("#!/bin/sh\necho 'listen EADDRINUSE: address already in use'\nexit 1\n")
    broken.chmod(0o755)
    dlz = AzuriteDlz(SandboxStore(tmp_path / "store"), broken)
    try:
        problem = dlz.probe("acct", "container", "sv=2026-10-06&sr=c&sig=abc")
    finally:
        dlz.close()
    assert problem is not None
    assert f"StorageException: {SERVER_BUSY}" in problem and "EADDRINUSE" in problem, problem
