"""Azurite, Microsoft's Azure Storage emulator (npm `azurite`), as a child of the sandbox.

Found at `$PROVISION_AZURITE`, on PATH (`azurite-blob`, with `node`), in the checkout's
`node_modules/.bin`, or in the per-machine install `install_dir()`, where `.ci/run` puts the pinned
`AZURITE_VERSION` with npm; `PROVISION_AZURITE=off` forces the built-in oracle.

Flags (azurite 3.37.0 `azurite-blob --help`): accounts come only from `AZURITE_ACCOUNTS`
(`name:base64key;…`, read at start, so a new account means a restart); `--inMemoryPersistence`
because the store is the source of truth and is replayed into every fresh process;
`--disableProductStyleUrl` so the account is the first path segment (path-style URLs,
`http://127.0.0.1:<port>/<account>/<container>`); `--blobPort 0` so the kernel picks the port
as Azurite binds it, read back from its "successfully listens on http://127.0.0.1:<port>" line —
a port chosen beforehand can be taken by another process's connection before node binds it
(Azurite then exits with `listen EADDRINUSE`); `--skipApiVersionCheck` because
`azure-storage-blob` signs with a newer `sv` than this Azurite knows; `--disableTelemetry`
(no network here); `--silent` (the access log would print SAS signatures).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

AZURITE_VERSION = "3.37.0"
AZURITE_ENV = "PROVISION_AZURITE"
START_TIMEOUT_SECONDS = 120.0  # node's start-up takes 2-13 s on a loaded 2-core machine
_READY_LINE = re.compile(r"successfully listens on http://127\.0\.0\.1:(?P<port>\d+)")
_PR_SET_PDEATHSIG = 1


class AzuriteError(RuntimeError):
    """Azurite was found but did not start."""


def install_dir(environ: Mapping[str, str]) -> Path:
    """Where the pinned Azurite is installed once per machine, outside any checkout (`.ci/run`)."""
    from provisioner.sandbox.files import tool_cache_dir

    return tool_cache_dir(environ) / f"azurite-{AZURITE_VERSION}"


def find_azurite(environ: Mapping[str, str]) -> Path | None:
    """The `azurite-blob` executable to run, or None (no Node, not installed, or switched off)."""
    chosen = environ.get(AZURITE_ENV, "").strip()
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    path = environ.get("PATH", os.defpath)
    if shutil.which("node", path=path) is None:
        return None
    candidates = [Path(chosen)] if chosen else []
    on_path = shutil.which("azurite-blob", path=path)
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "azurite-blob")
    candidates.append(install_dir(environ) / "node_modules" / ".bin" / "azurite-blob")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _die_with_parent() -> None:
    # Linux only; PDEATHSIG fires when the forking *thread* ends, hence the owner thread below.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class AzuriteProcess:
    """One `azurite-blob` child on a loopback port; `start(accounts)` (re)starts it.

    The port is the one this start bound (a restart may get another); 0 before the first start.
    """

    def __init__(self, executable: Path) -> None:
        self.executable = executable
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None
        # The process is forked from this long-lived thread: PR_SET_PDEATHSIG is tied to the
        # forking thread, and a request-handler thread would take Azurite down with it.
        self._owner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="azurite")
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, accounts: Mapping[str, str]) -> None:
        """Start (or restart) with exactly these accounts ({name: base64 key}); waits until it listens."""
        with self._lock:
            self._stop()
            self._owner.submit(self._spawn, dict(accounts)).result()

    def _spawn(self, accounts: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}
        env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in sorted(accounts.items()))
        argv = [
            str(self.executable),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--disableProductStyleUrl",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self._proc = proc
        lines: list[str] = []
        listening: list[int] = []
        ready = threading.Event()
        drain = threading.Thread(target=_drain, args=(proc, lines, listening, ready), daemon=True, name="azurite-out")
        drain.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                self._stop_locked()
                last = next((line for line in reversed(lines) if line.strip()), "no output")
                raise AzuriteError(f"Azurite ({self.executable}) did not start: {last.strip()[:300]}")
        self.port = listening[0]

    def stop(self) -> None:
        with self._lock:
            self._stop()
            self._owner.shutdown(wait=True)

    def _stop(self) -> None:
        self._owner.submit(self._stop_locked).result()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(proc: subprocess.Popen[str], lines: list[str], listening: list[int], ready: threading.Event) -> None:
    """Read the child's output so its pipe never fills; report the port of the 'listens on' line."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if len(lines) < 50:
            lines.append(line)
        found = _READY_LINE.search(line)
        if found and not ready.is_set():
            listening.append(int(found.group("port")))
            ready.set()
