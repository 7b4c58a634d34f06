"""`python -m provisioner.main` and `python -m provisioner.sandbox.provider` without an
interpreter's start: children of processes that have imported what they import already
(tests/helpers/zygote_server.py), one server per module per xdist worker.

Issue 24: the suite is CPU-bound. Each `provision` a test runs spent ~0.27 CPU-s of its ~0.85
starting Python and importing what a fresh interpreter imports again every time; each provider
process Terraform's keeper starts (one per Terraform command that uses providers) spent ~0.13
CPU-s of its ~0.22 the same way. The child is a real process running the real code: its own
pid, the caller's stdin, stdout and stderr, the caller's directory, environment and argv, its
exit status (-N when signal N ended it) and its own children. What differs is fixed at the
server's start: the hash seed, and what the interpreter decides from its environment before any
code runs (the `PYTHON*` variables, the locale's encoding of stdio) — a call whose environment
differs there runs in a fresh interpreter, as does every one that wants another interpreter or
`-X` option.

Commands are forked by `Project.run` and `run_sampled`. Providers are forked through
PROVISION_SANDBOX_PYTHON (the interpreter the sandbox's provider launcher runs), which
`Project.env` sets to `PROVIDER_ZYGOTE.interpreter()`: an executable that passes everything
but `-m provisioner.sandbox.provider` to the real interpreter (zygote_client.py).
"""

from __future__ import annotations

import contextlib
import locale
import marshal
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from provisioner.sandbox.provider import PYTHON_ENV
from tests.helpers.zygote_server import MAIN, PROVIDER, decided_at_start

_SERVER = Path(__file__).with_name("zygote_server.py")
_CLIENT = Path(__file__).with_name("zygote_client.py")
# The server waits on its children with Linux's pidfds; DLZ_TESTS_FRESH_INTERPRETERS=1 starts every
# command and provider from scratch instead.
FORKING = os.environ.get("DLZ_TESTS_FRESH_INTERPRETERS") != "1" and hasattr(os, "pidfd_open")


class Zygote:
    """One server for `module`, started on first use and stopped with the worker (its stdin closes)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self._lock = threading.Lock()
        self._server: subprocess.Popen[str] | None = None
        self._address = ""
        self._started_with: dict[str, str] = {}

    def _start(self) -> str:
        with self._lock:
            if self._server is None or self._server.poll() is not None:
                self._started_with = dict(os.environ)
                self._server = subprocess.Popen(
                    # -s: no user site-packages, as a command has none under its project's own HOME.
                    [sys.executable, "-s", str(_SERVER), self.module],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert self._server.stdout is not None
                self._address = self._server.stdout.readline().strip()
                assert self._address, "the zygote did not start"
            return self._address

    @property
    def pid(self) -> int:
        """The server's pid (started if it was not)."""
        self._start()
        assert self._server is not None
        return self._server.pid

    def serves(self, env: Mapping[str, str]) -> bool:
        """Whether a fresh interpreter with `env` would start as the server did."""
        return decided_at_start(dict(env)) == decided_at_start(self._started_with or dict(os.environ))

    def forked(self) -> list[int]:
        """The pids of the children this server has forked, oldest first (a pid may come again)."""
        log = Path(self._start()).with_name("forked")
        return [int(line) for line in log.read_text().split()] if log.exists() else []

    def interpreter(self) -> str:
        """An executable to use as the interpreter for `-m <module>`: it forks that from this
        server, and runs anything else (and a call this server does not serve) in the real one."""
        address = self._start()
        path = Path(address).with_name("python")
        with self._lock:  # one writer: two threads would write one partial file
            if path.exists():
                return str(path)
            code = (
                f"#!{sys.executable} -IS\n"  # no site, no user paths: the client imports the standard library alone
                "import sys\n"
                f"sys.path.insert(0, {str(_CLIENT.parent)!r})\n"
                "import zygote_client\n"
                f"zygote_client.main({address!r}, {sys.executable!r}, {self.module!r})\n"
            )
            partial = path.with_name("python.partial")
            partial.write_text(code)
            partial.chmod(0o755)
            partial.rename(path)
            return str(path)

    def start(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str], input: str | None = None) -> Forked:
        """As `subprocess.Popen([sys.executable, "-m", "provisioner.main", *args], stdout=PIPE, stderr=PIPE)`:
        the child runs once this returns (its pid known); `communicate` collects it."""
        address = self._start()
        stdin_read, stdin_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        assert self.module == MAIN, "providers are forked by their interpreter (see interpreter())"
        request = marshal.dumps({"argv": list(args), "cwd": str(cwd), "env": dict(env)})
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(address)
        socket.send_fds(conn, [request], [stdin_read, out_write, err_write])
        for fd in (stdin_read, out_write, err_write):
            os.close(fd)
        pid = int(marshal.loads(conn.recv(4096))["pid"])
        forked = Forked([sys.executable, "-m", "provisioner.main", *args], pid, conn, (out_read, err_read))
        # As subprocess: a child that does not read its input is not an error.
        with contextlib.suppress(BrokenPipeError), open(stdin_write, "wb") as stdin:
            if input is not None:
                stdin.write(input.encode(locale.getpreferredencoding(False)))
        return forked

    def run(
        self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str], input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """As `subprocess.run([sys.executable, "-m", "provisioner.main", *args], capture_output=True, text=True)`."""
        forked = self.start(args, cwd=cwd, env=env, input=input)
        out, err = forked.communicate(timeout)
        assert forked.returncode is not None
        return subprocess.CompletedProcess(forked.args, forked.returncode, out, err)


class Forked:
    """A forked command, as much of `subprocess.Popen` as the tests use: `pid`, `communicate`, `returncode`."""

    def __init__(self, args: list[str], pid: int, conn: socket.socket, outputs: tuple[int, int]) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self._conn = conn
        self._captured: dict[int, bytes] = {}
        self._outputs = outputs
        self._readers = [threading.Thread(target=self._drain, args=(fd,), daemon=True) for fd in outputs]
        for reader in self._readers:
            reader.start()

    def _drain(self, fd: int) -> None:
        with open(fd, "rb") as stream:
            self._captured[fd] = stream.read()

    def communicate(self, timeout: float) -> tuple[str, str]:
        """Wait for the exit status and the end of both outputs; on a timeout, kill the child and raise."""
        with self._conn:
            self._conn.settimeout(timeout)
            try:
                self.returncode = int(marshal.loads(self._conn.recv(4096))["returncode"])
            except TimeoutError:
                os.kill(self.pid, 9)
                raise subprocess.TimeoutExpired(self.args, timeout) from None
        for reader in self._readers:
            reader.join(timeout)  # a process the child left running may hold its output open
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        out, err = (_text(self._captured[fd]) for fd in self._outputs)
        return out, err


def _text(data: bytes) -> str:
    """As subprocess's `text=True` decodes: the locale's encoding, strictly, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


ZYGOTE = Zygote(MAIN)
PROVIDER_ZYGOTE = Zygote(PROVIDER)


# For `Project.env(**STARTED_PROVIDERS)`: the stand-in provider started as Terraform's keeper
# starts it, not forked. The tests of what a kill or a concurrent run does to processes see the
# process tree the product makes (a forked provider is the zygote's child, and outlives its
# starter by the moment its watcher takes to kill it).
STARTED_PROVIDERS = {PYTHON_ENV: sys.executable}


def forked_providers() -> dict[str, str]:
    """The environment that has the sandbox's stand-in provider forked (none when not forking)."""
    return {PYTHON_ENV: PROVIDER_ZYGOTE.interpreter()} if FORKING else {}


def provision_python() -> str:
    """The interpreter for a test's own `[python, "-m", "provisioner.main", …]` (a shell script's
    `$PY`, a Popen that merges stderr into stdout): forked when it can be, as `Project.run` does.
    Not for a test that signals that process or names its pid: the forked `provision` is another
    process (zygote_client.py)."""
    return ZYGOTE.interpreter() if FORKING else sys.executable


def forks(env: Mapping[str, str]) -> bool:
    """Whether a command with `env` is forked from the zygote rather than started fresh."""
    return FORKING and ZYGOTE.serves(env)
