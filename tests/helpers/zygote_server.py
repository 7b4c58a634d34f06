"""A process that has imported a module's dependencies and forks one child per `python -m <module>`.

Run by tests/helpers/zygote.py as `python -s zygote_server.py <module>`, for one of `MODULES`:
`provisioner.main` (a `provision` command) or `provisioner.sandbox.provider` (the stand-in
provider, as Terraform and its keeper start it). It prints the path of its SOCK_SEQPACKET socket
and serves until its stdin closes; `forked` beside the socket lists the children's pids. A
request is one message: JSON `{"argv", "cwd", "env"}` (and, for a child that stands in for the
requester, its `"pgid"`, which the child joins, and its pid as `"requester"`, with which the
child dies), with three file descriptors (the child's stdin, stdout and stderr). The answer is
two messages on the same connection: `{"pid"}` once the child runs, `{"returncode"}`
(subprocess's convention: -N for signal N) once it has ended; or one, `{"pid": null}`, when a
fresh interpreter with the request's environment would not start as this one did (see
`DECIDED_AT_START`): the requester then starts one.

The child returns out of `serve()` with no frame of the server above it, takes the request's
descriptors, directory, environment and argv, and runs the module as `-m` would: what a fresh
interpreter would do, minus its start and the imports. Only the standard library and the
module's imports are loaded here, never a thread started: a fork copies only the calling thread,
and gRPC (the provider's) is imported but not initialised until the child serves.
"""

from __future__ import annotations

import contextlib
import importlib
import marshal
import os
import pkgutil
import runpy
import select
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any

# The modules a server can run; `-m` runs one as `__main__`, so it is never left imported here.
MAIN, PROVIDER = "provisioner.main", "provisioner.sandbox.provider"
MODULES = (MAIN, PROVIDER)
# What a fresh interpreter reads from its environment before running a line of code (the stdio
# encoding among it): a request whose values differ is not served.
DECIDED_AT_START = ("PYTHON", "LANG", "LC_")
# The provider's modules run in provider processes only; `provision` never imports them.
_NOT_PRELOADED = (PROVIDER, MAIN)


def decided_at_start(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(DECIDED_AT_START)}


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
    # Imported where first used: rendering's and the config reader's libraries among them.
    for name in ("azure.storage.blob", "databricks.sdk.service.settings", "jinja2", "yaml", "netrc"):
        importlib.import_module(name)
    # The templates compiled, as a command's first render leaves them (~50 ms of CPU each time).
    from provisioner.render.root import warm

    warm()


def _preload_provider() -> None:
    """The provider's entry point and all it imports (gRPC, protobuf, tf, the resources),
    with what it imports where first used (the servicer, gRPC's server side)."""
    importlib.import_module(f"{PROVIDER}.__main__")
    del sys.modules[f"{PROVIDER}.__main__"]  # run as `__main__` in the child; runpy warns otherwise
    for name in ("tf.provider", "tf.utils", "tf.gen.grpc_stdio_pb2_grpc", "tf.gen.tfplugin_pb2_grpc", "grpc"):
        importlib.import_module(name)
    _preload(PROVIDER)
    # The SDK, as the provider loads it on its first call (client.load_sdk: without the package's
    # `__init__`), and the modules it then takes.
    from provisioner.sandbox.provider.client import load_sdk

    load_sdk()
    for name in ("config", "core", "errors", "errors.platform", "errors.overrides", "mixins.compute"):
        importlib.import_module(f"databricks.sdk.{name}")


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
    started_with = decided_at_start(dict(os.environ))
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                shutil.rmtree(where, ignore_errors=True)
                os._exit(0)  # the worker has gone; running children finish on their own
            if key.fileobj is listener:
                conn, _ = listener.accept()
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                request = marshal.loads(data)
                if decided_at_start(request["env"]) != started_with:
                    for fd in fds:
                        os.close(fd)
                    with contextlib.suppress(OSError):
                        conn.send(marshal.dumps({"pid": None}))
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    conn.close()
                    for other_pidfd, (_, other) in waiting.items():
                        os.close(other_pidfd)
                        other.close()
                    if "pgid" in request:  # killed with the requester's group, as its own child would be
                        with contextlib.suppress(OSError):  # the server may have moved it already
                            os.setpgid(0, request["pgid"])
                    for target, fd in enumerate(fds):
                        os.dup2(fd, target)
                        os.close(fd)
                    return dict(request)
                if "pgid" in request:  # here too, so the child is in the group once its pid is known
                    with contextlib.suppress(OSError):
                        os.setpgid(pid, request["pgid"])
                for fd in fds:
                    os.close(fd)
                with open(os.path.join(where, "forked"), "a") as log:  # the tests' proof of a fork
                    log.write(f"{pid}\n")
                with contextlib.suppress(OSError):  # a caller that has gone still has its child reaped
                    conn.send(marshal.dumps({"pid": pid}))
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
                    conn.send(marshal.dumps({"returncode": os.waitstatus_to_exitcode(status)}))
                conn.close()


def become(request: dict[str, Any]) -> None:
    """This child as `python -m <module> <argv>` started in the request's directory would be."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    tempfile.tempdir = None  # computed from TMPDIR on first use, as in a fresh process
    sys.path[0] = os.getcwd()  # -m puts the working directory first
    sys.argv = ["-m", *request["argv"]]
    sys.modules.pop(MAIN, None)  # if a preloaded module imported it, runpy warns
    if "requester" in request:
        _die_with(request["requester"])


def _die_with(pid: int) -> None:
    """Killed when `pid` ends: this child stands in for that process (zygote_client.py), which
    a SIGKILL may end without a word."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="zygote-requester", daemon=True).start()


if __name__ == "__main__":
    module = sys.argv[1]
    assert module in MODULES, module
    if module == MAIN:
        _preload()
        _preload_used_later()
    else:
        _preload_provider()
    become(serve())
    runpy.run_module(module, run_name="__main__", alter_sys=True)
