"""The interpreter `Zygote.interpreter()` hands out: `python -m <module> …` forked from a zygote.

Run as `python -IS <that file> <an interpreter's arguments>` (no site-packages: the standard
library alone, so it starts in milliseconds). Requests and answers are `marshal`led, not JSON:
both ends are this interpreter, and `json`'s import (with `re`) was a third of this process's
CPU. For `-m <module> <args>` it asks the zygote server
to fork the module with this process's stdin, stdout, stderr, directory and environment, in this
process's group, then waits for it and ends as it ended. Whatever else it is asked to run (and a
call the server does not serve) goes to the real interpreter, which takes over this process.

The forked child stands in for this process, so the two live and die together:
- a signal to the process group reaches the child as it would reach this process; SIGINT is
  ignored here so that the child alone answers it;
- the child watches this process and is killed when it goes (zygote_server.become), so a
  SIGKILL here (go-plugin's Kill, the keeper's) ends both, as it would end one process.
"""

from __future__ import annotations

import marshal
import os
import sys

# The C halves of `signal` and `socket`: the modules themselves import `enum` (with `socket`,
# `selectors` too), which took this process from ~12 to ~18 ms of CPU per forked provider.
from _signal import SIG_DFL, SIG_IGN, SIGINT, signal  # type: ignore[import-not-found]
from _socket import AF_UNIX, SCM_RIGHTS, SOCK_SEQPACKET, SOL_SOCKET, socket
from array import array


def main(address: str, python: str, module: str) -> None:
    args = sys.argv[1:]
    if args[:2] != ["-m", module]:
        os.execv(python, [python, *args])
    signal(SIGINT, SIG_IGN)
    request = {
        "argv": args[2:],
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "pgid": os.getpgid(0),
        "requester": os.getpid(),
    }
    conn = socket(AF_UNIX, SOCK_SEQPACKET)
    try:
        conn.connect(address)
        # socket.send_fds, spelled out
        conn.sendmsg([marshal.dumps(request)], [(SOL_SOCKET, SCM_RIGHTS, array("i", [0, 1, 2]))])
        answer = conn.recv(4096)
        pid = marshal.loads(answer).get("pid") if answer else None
    except OSError:
        pid = None  # the worker, and its server, have gone
    if pid is None:
        conn.close()
        signal(SIGINT, SIG_DFL)
        os.execv(python, [python, *args])
    answer = conn.recv(4096)
    returncode = int(marshal.loads(answer)["returncode"]) if answer else 1
    if returncode < 0:
        signal(-returncode, SIG_DFL)
        os.kill(os.getpid(), -returncode)
    os._exit(returncode)
