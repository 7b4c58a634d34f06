"""Terraform's keeper started before its command is known (guard.py, "Started early"), with
the provider server a target names starting beside it.

Standard library and the keeper only: `provision` imports this before its own modules
(provisioner/run/early.py), and each module imported first delays the server's start.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from provisioner.terraform.guard import AWAIT_COMMAND, encode_request, keeper_command, uses_providers

if TYPE_CHECKING:
    from pathlib import Path

    from provisioner.terraform.environment import ChildEnv


class EarlyKeeper:
    """A keeper started before its command is known (guard.py AWAIT_COMMAND), and beside it the
    provider server a target names, both starting while `provision` loads its modules: the
    first Terraform command that uses providers takes it (`run`'s `early`); `close` ends it
    if none did. The keeper checks the server against that command's environment, so a guess
    that proves wrong costs a process, never a result."""

    # What an interpreter needs to start and find its packages: all the server gets until the
    # command's own environment (Terraform's) reaches it.
    _INTERPRETER_KEYS = ("PATH", "HOME", "LANG")
    _INTERPRETER_PREFIXES = ("PYTHON", "LC_")

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self._lock = threading.Lock()
        self._proc = proc

    @classmethod
    def start(cls, server: Sequence[str] | None, environ: Mapping[str, str]) -> EarlyKeeper:
        """Start the keeper, and with it `server` (a command line) unless TF_LOG* would send
        the server's stderr to ours: then it starts with the command, as without this."""
        if any(key.startswith("TF_LOG") for key in environ):
            server = None
        env = {
            k: v for k, v in environ.items() if k in cls._INTERPRETER_KEYS or k.startswith(cls._INTERPRETER_PREFIXES)
        }
        try:
            proc = subprocess.Popen(
                keeper_command([AWAIT_COMMAND, *(server or ())]),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # as `run` starts a keeper
                umask=0o077,
            )
        except OSError:
            proc = None  # `run` starts one when it needs it, and says what fails then
        return cls(proc)

    def take(self, argv: Sequence[str], cwd: Path, env: ChildEnv) -> subprocess.Popen[bytes] | None:
        """The keeper, running `argv` in `cwd` with `env`, if it is still free and `argv` uses providers."""
        if not uses_providers(list(argv)):
            return None
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return None
        assert proc.stdin is not None
        try:
            proc.stdin.write(encode_request(list(argv), str(cwd.absolute()), dict(env.values)))
            proc.stdin.flush()
        except OSError:  # it is gone: the caller starts a keeper of its own
            _end(proc)
            return None
        return proc

    def close(self) -> None:
        """End the keeper if no command took it (end of file: it stops its server and exits)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
