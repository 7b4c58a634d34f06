"""A process that has imported `provisioner` and forks one child per `python -m provisioner.main`.

Run by tests/helpers/zygote.py as `python -s zygote_server.py`; it prints the path of its
SOCK_SEQPACKET socket and serves until its stdin closes. A request is one message: JSON
`{"argv", "cwd", "env"}` with three file descriptors (the child's stdin, stdout and stderr). The
answer is two messages on the same connection: `{"pid"}` once the child runs, `{"returncode"}`
(subprocess's convention: -N for signal N) once it has ended.

The child returns out of `serve()` with no frame of the server above it, takes the request's
descriptors, directory, environment and argv, and runs `provisioner.main` as `-m` would: what a
fresh interpreter would do, minus its start and the imports. Only the standard library and
`provisioner` are imported here, never a thread started: a fork copies only the calling thread.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import runpy
import selectors
import shutil
import socket
import sys
import tempfile
import time
from typing import Any

# The stand-in provider's modules run in provider processes only, and load grpc, which must not
# be loaded before a fork; `-m provisioner.main` runs that module as `__main__`, not imported.
_NOT_PRELOADED = ("provisioner.sandbox.provider", "provisioner.main")


def _preload(package: str = "provisioner") -> None:
    """Every module a command may import, the third-party ones it pulls in with them."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__, f"{package}."):
        if module.name in _NOT_PRELOADED or module.name.endswith(".__main__"):
            continue
        if module.ispkg:
            _preload(module.name)
        else:
            importlib.import_module(module.name)


def _preload_used_later() -> None:
    """What the modules import where it is first used."""
    from provisioner.databricks.sdk import preload

    preload()
    for name in ("azure.storage.blob", "databricks.sdk.service.settings"):  # imported where first used
        importlib.import_module(name)


def serve() -> dict[str, Any]:
    """Serve until stdin closes (then exit); in a child, return its request."""
    where = tempfile.mkdtemp(prefix="zygote-")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(os.path.join(where, "socket"))
    listener.listen(64)
    print(listener.getsockname(), flush=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    waiting: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, the requester's connection)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                shutil.rmtree(where, ignore_errors=True)
                os._exit(0)  # the worker has gone; running children finish on their own
            if key.fileobj is listener:
                conn, _ = listener.accept()
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                request = json.loads(data)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    conn.close()
                    for other_pidfd, (_, other) in waiting.items():
                        os.close(other_pidfd)
                        other.close()
                    for target, fd in enumerate(fds):
                        os.dup2(fd, target)
                        os.close(fd)
                    return dict(request)
                for fd in fds:
                    os.close(fd)
                with contextlib.suppress(OSError):  # a caller that has gone still has its child reaped
                    conn.send(json.dumps({"pid": pid}).encode())
                pidfd = os.pidfd_open(pid)
                waiting[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ)
            else:
                pidfd = int(key.fd)
                pid, conn = waiting.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    conn.send(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
                conn.close()


def become(request: dict[str, Any]) -> None:
    """This child as `python -m provisioner.main <argv>` started in the request's directory would be."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    tempfile.tempdir = None  # computed from TMPDIR on first use, as in a fresh process
    sys.path[0] = os.getcwd()  # -m puts the working directory first
    sys.argv = ["-m", *request["argv"]]
    sys.modules.pop("provisioner.main", None)  # if a preloaded module imported it, runpy warns


if __name__ == "__main__":
    _preload()
    _preload_used_later()
    become(serve())
    runpy.run_module("provisioner.main", run_name="__main__", alter_sys=True)
