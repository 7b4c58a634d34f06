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

A provider server (PROVIDER_SERVER_ENV, set by a target whose provider is not the registry's:
the sandbox's stand-in): Terraform starts a provider process per provider instance, three for
one plan. When the environment names a server command, the keeper starts that server first,
in the process group it then puts Terraform in, and hands Terraform the line the server prints
as `TF_REATTACH_PROVIDERS`: every instance of this one command is then served by that one
process (terraform `internal/command/meta_providers.go` `unmanagedProviderFactory`). Once
Terraform has exited, the keeper closes the server's stdin and it stops; whatever is left goes
with the group. A server that does not come up is stopped, and Terraform starts its providers
itself as it otherwise would.

Started early (`guard.py --await-command [server command]`, provisioner/terraform/early.py
`EarlyKeeper`): `provision` starts the keeper while its own modules load, before it knows the
Terraform command. The keeper then starts the server it was given at once, since its start
(an interpreter, gRPC and the stand-in's modules, ~100 ms) would otherwise come after all of
`provision`'s, and reads the command, its directory and its environment from stdin
(`encode_request`). The server gets the same directory and environment on its stdin before it
serves (ENVIRON_ON_STDIN), so it runs exactly as one started then. It is used only if that
environment names the same server (and the same stderr): otherwise it is stopped and the
keeper goes on as above. End of file before a command (`provision` is gone, or ran no
Terraform command with providers) stops it.

Run as `python -I -S guard.py terraform <args>`: it imports nothing outside the standard
library, so an interpreter without site-packages starts it in milliseconds; and of that library
only what it needs: not `json`, whose import (with `re`) took the keeper's start from 14-16 to
18-20 ms of CPU before every Terraform run (the interpreter alone: 8; bench/NOTES.md).
"""

from __future__ import annotations

import os
import select
import sys

# `signal`'s C half (typeshed has no stub for it): `signal` wraps it in enums, and `enum` with
# `contextlib` were 4-5 of the keeper's 13-15 ms of CPU before every Terraform run
# (bench/NOTES.md); plain ints are all the keeper needs, and try/except does for suppress.
from _signal import SIG_DFL, SIGINT, SIGKILL, SIGSTOP, SIGTERM, signal  # type: ignore[import-not-found]

_READ_SIZE = 65536
_IDLE_POLL_MS = 1000

# The command that serves one Terraform command's provider instances (see above), one argument
# per line (`server_argv`).
PROVIDER_SERVER_ENV = "PROVISION_PROVIDER_SERVER"
# Terraform commands that start providers; any other runs without a server.
_PROVIDER_COMMANDS = frozenset(
    {"plan", "apply", "destroy", "show", "import", "refresh", "validate", "console", "providers", "test"}
)


# The keeper's first argument when it is started before its command (see above).
AWAIT_COMMAND = "--await-command"
# Appended to the command of a server started before its environment is known: it reads its
# directory and environment from stdin first (`encode_setting`). The name is the
# sandbox's too (provisioner/sandbox/provider/__init__.py, which does not import the product).
ENVIRON_ON_STDIN = "--environ-on-stdin"
_LENGTH_DIGITS = 10


def encode_strings(items: list[str]) -> bytes:
    """One block: the NUL-separated items (no argument or environment entry holds a NUL),
    after their length in ten digits."""
    payload = b"\0".join(os.fsencode(item) for item in items)
    return str(len(payload)).zfill(_LENGTH_DIGITS).encode() + payload


def encode_setting(cwd: str, environ: dict[str, str]) -> bytes:
    """A directory and an environment, a block each: what an early server reads from stdin
    (ENVIRON_ON_STDIN), and the end of what an early keeper reads (`encode_request`)."""
    return encode_strings([cwd]) + encode_strings([f"{key}={value}" for key, value in environ.items()])


def encode_request(argv: list[str], cwd: str, environ: dict[str, str]) -> bytes:
    """What an early keeper reads from stdin: Terraform's command line, its directory, its environment."""
    return encode_strings(argv) + encode_setting(cwd, environ)


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_strings(fd: int) -> list[str] | None:
    """One `encode_strings` block, or None at end of file before all of it."""
    header = _read_exactly(fd, _LENGTH_DIGITS)
    payload = None if header is None else _read_exactly(fd, int(header))
    if payload is None:
        return None
    return [os.fsdecode(item) for item in payload.split(b"\0")] if payload else []


def _read_request() -> tuple[list[str], str, dict[str, str]] | None:
    """`encode_request`'s blocks from stdin, or None at end of file before all of them."""
    argv = read_strings(0)
    cwd = None if argv is None else read_strings(0)
    entries = None if cwd is None else read_strings(0)
    if argv is None or cwd is None or entries is None:
        return None
    return argv, cwd[0], dict(entry.split("=", 1) for entry in entries)


def keeper_command(argv: list[str]) -> list[str]:
    """How `provision` runs the keeper for `argv`: isolated (-I) and without site-packages
    (-S), which it does not need."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *argv]


def server_argv(spec: str) -> list[str]:
    """The provider server's command line from PROVIDER_SERVER_ENV's value."""
    return spec.split("\n")


def uses_providers(argv: list[str]) -> bool:
    """Does this Terraform command line (`terraform [global flags] <command> …`) start providers?"""
    return next((a for a in argv[1:] if not a.startswith("-")), "") in _PROVIDER_COMMANDS


_SERVER_START_MS = 30_000  # an interpreter and gRPC on a loaded machine: seconds at most
_SERVER_STOP_MS = 5_000


class _Keeper:
    def __init__(self) -> None:
        self.pid = 0
        self.group = 0  # Terraform's process group: its own, or the provider server's
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
        if self.pid or self.group:  # Terraform, or a provider server still starting
            self.kill_group()

    def interrupt(self) -> None:
        self.interrupted = True
        try:  # noqa: SIM105 (no contextlib: see the imports)
            os.kill(self.pid, SIGINT)
        except ProcessLookupError:
            pass

    def parent_gone(self) -> None:
        # A second SIGINT is Terraform's hard stop: only a Terraform not yet asked gets one.
        if not self.interrupted:
            self.interrupt()

    def kill_group(self) -> None:
        _kill_group(self.group or self.pid)

    def exited(self) -> bool:
        """Terraform has exited (its zombie stays: its pid, and so its group id, are not reused)."""
        result = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return result is not None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _ProviderServer:
    """A running provider server: its pid (its process group's id), its stdin, its stdout."""

    def __init__(
        self, pid: int, stdin: int, stdout: int, command: list[str], stderr: list[tuple[int, int, str, int, int]]
    ) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.command, self.stderr = command, stderr  # what it was started as (an early one is checked against them)

    @classmethod
    def spawn(cls, command: list[str], keeper: _Keeper) -> _ProviderServer | None:
        """Start `command`; from its start the server's group is the keeper's, so a SIGTERM
        meanwhile stops it."""
        stderr = _server_stderr()
        try:
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            pid = os.posix_spawnp(
                command[0],
                command,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), *stderr],
                setpgroup=0,
            )
        except (OSError, ValueError):  # ValueError: an empty first argument
            return None
        keeper.group = pid
        os.close(in_r)
        os.close(out_w)
        return cls(pid, in_w, out_r, command, stderr)

    @classmethod
    def start(
        cls, argv: list[str], keeper: _Keeper, early: _ProviderServer | None
    ) -> tuple[_ProviderServer, str] | None:
        """The server the environment names for this Terraform command and its
        `TF_REATTACH_PROVIDERS` line, or None (not asked for, or not up). `early`, started
        before the environment was known, is that server if it was started as the one named
        now: it is handed this directory and environment; otherwise it is stopped."""
        spec = os.environ.get(PROVIDER_SERVER_ENV)
        wanted = server_argv(spec) if spec and uses_providers(argv) else None
        server = early if early is not None and early.serves(wanted) else None
        if early is not None and server is None:
            early.stop(kill=True)
            keeper.group = 0
        if server is not None:
            server.hand_environment()
        elif wanted is not None:
            server = cls.spawn(wanted, keeper)
        if server is None:
            return None
        line = None if keeper.killed else server._first_line()
        if line is None:
            server.stop(kill=True)
            keeper.group = 0  # its group is gone with it: Terraform gets one of its own
            return None
        return server, line

    def serves(self, wanted: list[str] | None) -> bool:
        """An early server is the one wanted: the same command, its stderr where it would go now."""
        return wanted is not None and self.command == [*wanted, ENVIRON_ON_STDIN] and self.stderr == _server_stderr()

    def hand_environment(self) -> None:
        """Give an early server this directory and environment (ENVIRON_ON_STDIN)."""
        try:  # noqa: SIM105 (no contextlib: see the imports)
            _write_all(self.stdin, encode_setting(os.getcwd(), dict(os.environ)))
        except OSError:  # EPIPE: it has exited, and its stdout's end of file says so next
            pass

    def _first_line(self) -> str | None:
        """Its first line; None if it ends or is stopped (a SIGTERM to us kills it) before."""
        poller = select.poll()
        poller.register(self.stdout, select.POLLIN)
        data = b""
        while b"\n" not in data:
            if not poller.poll(_SERVER_START_MS):
                return None
            chunk = os.read(self.stdout, _READ_SIZE)
            if not chunk:
                return None
            data += chunk
        return data.split(b"\n", 1)[0].decode("utf-8", "replace")

    def stop(self, *, kill: bool = False) -> None:
        """End of file on its stdin ends it; wait for it (bounded), then nothing of it is left."""
        os.close(self.stdin)
        if not kill:
            poller = select.poll()
            poller.register(self.stdout, select.POLLIN)
            # Its stdout reaches end of file when it exits.
            while poller.poll(_SERVER_STOP_MS) and os.read(self.stdout, _READ_SIZE):
                pass
        os.close(self.stdout)
        _kill_group(self.pid)
        os.waitpid(self.pid, 0)


def _kill_group(group: int) -> None:
    try:  # noqa: SIM105 (no contextlib: see the imports)
        os.killpg(group, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _server_stderr() -> list[tuple[int, int, str, int, int]]:
    """A managed provider's stderr reaches only Terraform's log (go-plugin logs it at debug
    level); the server's goes to ours (and so through `provision`'s masking) only when a
    TF_LOG* variable asks for Terraform's log."""
    if any(key.startswith("TF_LOG") for key in os.environ):
        return []
    return [(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]


def main(argv: list[str]) -> int:
    keeper = _Keeper()
    signal(SIGINT, keeper.on_sigint)
    signal(SIGTERM, keeper.on_sigterm)
    early = None
    if argv[:1] == [AWAIT_COMMAND]:
        early = _ProviderServer.spawn([*argv[1:], ENVIRON_ON_STDIN], keeper) if argv[1:] else None
        request = _read_request()
        if request is None:  # `provision` is gone, or ran no Terraform command with providers
            if early is not None:
                early.stop(kill=True)
            return 0
        argv, cwd, handed = request
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(handed)
    started = _ProviderServer.start(argv, keeper, early)
    server = started[0] if started else None
    environ = dict(os.environ, TF_REATTACH_PROVIDERS=started[1]) if started else os.environ
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    keeper.pid = os.posix_spawnp(
        argv[0],
        argv,
        environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ],
        # A group of its own, or the server's: Terraform, its providers and the server, killable as one.
        setpgroup=keeper.group,
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
    if server is not None:
        server.stop()
    keeper.kill_group()  # a provider Terraform could not shut down; normally nobody is left
    _, status = os.waitpid(keeper.pid, 0)
    if os.WIFSIGNALED(status):
        # Die the same way, so `provision` sees what it would have seen from Terraform itself.
        sig = os.WTERMSIG(status)
        if sig not in (SIGKILL, SIGSTOP):  # those two have no handler to reset
            signal(sig, SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
