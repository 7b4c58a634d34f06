"""Terraform's keeper: the small process between `provision` and Terraform (standard library only).

`provision` may die without warning (kill -9, an OOM kill, a CI runner cancelled). Terraform
must then still finish what it has in flight and write state, as on Ctrl-C, and nothing it
started may outlive it. Neither can be had from Terraform alone:

- SIGKILL on our death (PR_SET_PDEATHSIG) stops Terraform between a create's answer and the
  state write: the workspace has the cluster, the state does not.
- SIGINT on our death is not enough either: Terraform's stdout and stderr are pipes to us, and
  a Go program's write to a broken pipe on fd 1 or 2 ends it with SIGPIPE (Go `os/signal`
  docs, "SIGPIPE") — Terraform prints "Interrupt received" at once, and dies.
- A provider plugin exits when Terraform asks it to (go-plugin `client.go` `Kill`: the
  GRPCController `Shutdown` RPC, `grpc_controller.go`), not when Terraform disappears: the
  gRPC server keeps serving, so a killed Terraform leaves its providers running under init.

So this keeper starts Terraform in a process group of its own, relays its output to us while
we live and drains it after, and watches its stdin, a pipe only `provision` holds: end of
file there means `provision` is gone, and Terraform gets one SIGINT (unless it already got
one). When Terraform has exited, whatever is left in its process group (a provider it could
not shut down) is killed before we exit with Terraform's status.

Signals from `provision`: SIGINT is forwarded to Terraform (Ctrl-C: first graceful, second
hard stop); SIGTERM kills Terraform's process group at once (the third Ctrl-C).
Run as `python -I -S guard.py terraform <args>`: it imports nothing outside the standard
library, so an interpreter without site-packages starts it in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

_READ_SIZE = 65536
_IDLE_POLL_MS = 1000


class _Keeper:
    def __init__(self) -> None:
        self.pid = 0
        self.interrupted = False  # Terraform was sent SIGINT at least once
        self.pending_interrupts = 0  # SIGINTs that arrived before Terraform existed
        self.killed = False

    def on_sigint(self, signum: int, frame: object) -> None:
        if self.pid == 0:
            self.pending_interrupts += 1
            return
        self.interrupt()

    def on_sigterm(self, signum: int, frame: object) -> None:
        self.killed = True
        if self.pid:
            self.kill_group()

    def interrupt(self) -> None:
        self.interrupted = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)

    def parent_gone(self) -> None:
        # A second SIGINT is Terraform's hard stop: only a Terraform not yet asked gets one.
        if not self.interrupted:
            self.interrupt()

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def exited(self) -> bool:
        """Terraform has exited (its zombie stays: its pid, and so its group id, are not reused)."""
        result = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return result is not None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main(argv: list[str]) -> int:
    keeper = _Keeper()
    signal.signal(signal.SIGINT, keeper.on_sigint)
    signal.signal(signal.SIGTERM, keeper.on_sigterm)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    keeper.pid = os.posix_spawnp(
        argv[0],
        argv,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ],
        setpgroup=0,  # its own group: Terraform and the providers it starts, killable as one
    )
    os.close(out_w)
    os.close(err_w)
    if keeper.killed:
        keeper.kill_group()
    elif keeper.pending_interrupts:
        keeper.interrupt()

    relay = {out_r: 1, err_r: 2}
    poller = select.poll()
    for fd in relay:
        poller.register(fd, select.POLLIN)
    poller.register(0, select.POLLIN)
    parent_alive = True
    while relay:
        events = poller.poll(_IDLE_POLL_MS)
        if not events and keeper.exited():
            # Terraform is gone but something it started still holds its output open.
            keeper.kill_group()
        for fd, _event in events:
            if fd == 0:
                if not os.read(0, _READ_SIZE):  # provision never writes: only end of file comes
                    poller.unregister(0)
                    parent_alive = False
                    keeper.parent_gone()
                continue
            data = os.read(fd, _READ_SIZE)
            if not data:
                poller.unregister(fd)
                os.close(fd)
                del relay[fd]
                continue
            if parent_alive:
                try:
                    _write_all(relay[fd], data)
                except OSError:  # EPIPE: provision is gone (Python ignores SIGPIPE)
                    parent_alive = False
                    keeper.parent_gone()

    os.waitid(os.P_PID, keeper.pid, os.WEXITED | os.WNOWAIT)
    keeper.kill_group()  # a provider Terraform could not shut down; normally nobody is left
    _, status = os.waitpid(keeper.pid, 0)
    if os.WIFSIGNALED(status):
        # Die the same way, so `provision` sees what it would have seen from Terraform itself.
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
