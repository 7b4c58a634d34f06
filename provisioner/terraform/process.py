"""Run one terraform command: explicit env, live masked output, kept stderr, clean cancellation.

- Output streams line by line through `mask()` to the caller's sink, so a secret Terraform
  might print (it should not) never reaches the terminal or a CI log.
- Terraform runs under its keeper (guard.py) in a session of its own with umask 077 (state
  and plan files are 0600). If we die, however we die, the keeper gives Terraform one SIGINT
  and drains its output, so Terraform finishes what is in flight and writes state instead of
  being killed between a create and its record; then nothing it started outlives it.
- Ctrl-C / SIGTERM are forwarded as SIGINT, which makes Terraform stop gracefully: it
  finishes the in-flight operations, writes state and releases its lock. A second signal
  forwards again (Terraform's hard stop); a third kills Terraform and its providers.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ExitCode, ProvisionError
from provisioner.secret import mask
from provisioner.terraform.early import EarlyKeeper
from provisioner.terraform.environment import ChildEnv
from provisioner.terraform.guard import keeper_command

LineSink = Callable[[str], None]

_STDERR_TAIL_LINES = 40


class Cancelled(ProvisionError):
    """The user interrupted; Terraform was asked to stop and did."""

    exit_code = ExitCode.CANCELLED


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str  # only when captured
    stderr_tail: str


class _Children:
    """Running terraform processes, so one signal handler can stop them all (parallel plans)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self.signals_received = 0

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def forward(self, signum: int, frame: object) -> None:
        self.signals_received += 1
        with self._lock:
            procs = list(self._procs)
        if not procs:
            # Nothing of ours is running: behave like a plain Ctrl-C.
            raise KeyboardInterrupt
        # The keeper forwards SIGINT to Terraform and answers SIGTERM by killing its process group.
        sig = signal.SIGTERM if self.signals_received >= 3 else signal.SIGINT
        if self.signals_received == 1:
            sys.stderr.write(
                "\nInterrupt received: asking Terraform to stop cleanly (state and lock are kept safe)...\n"
            )
        elif self.signals_received == 2:
            sys.stderr.write(
                "\nSecond interrupt: asking Terraform to stop now. Once more kills it (may leave a lock).\n"
            )
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)


CHILDREN = _Children()


def install_signal_forwarding() -> None:
    """Route SIGINT/SIGTERM to running Terraform children (call once, from the main thread)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, CHILDREN.forward)
        signal.signal(signal.SIGTERM, CHILDREN.forward)


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: ChildEnv,
    out: LineSink,
    err: LineSink | None = None,
    capture_stdout: bool = False,
    stop: threading.Event | None = None,
    started: threading.Event | None = None,
    early: EarlyKeeper | None = None,
) -> Completed:
    """Run terraform; stream (or capture) stdout, stream and keep stderr; return its exit code.

    Setting `stop` asks this one process to stop as Ctrl-C would (SIGINT: Terraform finishes
    what is in flight and releases its lock); the caller learns it from the exit code.
    `started` is set once the process exists. `early`: a keeper to take if it is still free."""
    err = err or out
    tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    captured: list[str] = []
    received_before = CHILDREN.signals_received
    proc = (early.take(argv, cwd, env) if early is not None else None) or subprocess.Popen(
        keeper_command(list(argv)),
        cwd=cwd,
        env=dict(env.values),
        # Never written (but for an early keeper's request): its end of file tells the keeper we are gone.
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C reaches us, and we decide what Terraform gets
        umask=0o077,
    )
    CHILDREN.add(proc)
    if started is not None:
        started.set()

    def pump_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            if capture_stdout:
                captured.append(line)
            else:
                out(mask(line.rstrip("\n")))

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = mask(raw.decode("utf-8", "replace").rstrip("\n"))
            tail.append(line)
            err(line)

    readers = [threading.Thread(target=pump_stdout, daemon=True), threading.Thread(target=pump_stderr, daemon=True)]
    if stop is not None:
        threading.Thread(target=_stop_when_asked, args=(proc, stop), daemon=True).start()
    for t in readers:
        t.start()
    try:
        while True:
            try:
                returncode = proc.wait()
                break
            except KeyboardInterrupt:
                # Only reached when no handler is installed; forward and keep waiting.
                CHILDREN.forward(signal.SIGINT, None)
    finally:
        for t in readers:
            t.join()
        CHILDREN.discard(proc)
        assert proc.stdin is not None
        proc.stdin.close()
    if CHILDREN.signals_received > received_before:
        raise Cancelled(
            f"interrupted: terraform {argv[1] if len(argv) > 1 else ''} stopped (exit {returncode}); "
            "state was saved by Terraform — rerun the command to converge"
        )
    return Completed(returncode, "".join(captured), "\n".join(tail))


def _stop_when_asked(proc: subprocess.Popen[bytes], stop: threading.Event) -> None:
    while proc.poll() is None:
        if stop.wait(0.05):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            return
