"""A cluster's Python REPL, as the Command Execution API runs it: real Python in a child process
with the cluster's `spark.conf` and `dbutils.fs.ls`.

Each command runs in a fresh `python -I` (no site, no user environment, no inherited
variables: no secret of the sandbox's process reaches the command) with a time limit. What a
command sees of the cluster:
- `print(...)`: the command's text result. On Databricks a command's output is its text
  result's `data`, without the trailing newline (databricks-sdk-go
  `internal/commands_test.go`: `print(1)` gives "1");
- `spark.conf.get(key[, default])`: the cluster's *effective* Spark config (as of its last
  start, secret references resolved then); a missing key without a default raises
  `java.util.NoSuchElementException: <key>` as Spark's `RuntimeConfig.get` does;
- `dbutils.fs.ls("wasbs://<container>@<account>.blob.core.windows.net/…")`: lists the
  container on the sandbox's DLZ (Azurite, or the oracle) with the SAS the effective config
  holds under `fs.azure.sas.<container>.<account>.blob.core.windows.net` — the WASB driver's
  lookup — and returns `FileInfo(path, name, size, modificationTime)`s; a failure raises an
  exception whose `java_exception.toString()` is the driver's Java error (py4j's
  `Py4JJavaError` carries one, which is what provisioner/reach/probe.py reads). The parent
  process does the listing (the child asks over its stdin/stdout, one JSON line each way).

An exception ends the command as an error result shaped like the real API's (databricks-sdk-go
`service/compute/ext_results.go` reads it: HTML in `summary` — `<span class='ansi-red-fg'>
ZeroDivisionError</span>: division by zero` — and IPython's traceback in `cause`); the SDKs
turn that into "ZeroDivisionError: division by zero" (`internal/commands_test.go`).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

TIME_LIMIT_SECONDS = 60.0
WASBS_RE = re.compile(
    r"^wasbs://(?P<container>[a-z0-9-]+)@(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net(?P<path>/.*)?$"
)

# The child's program. It reads one JSON line (the command and the cluster's config), runs the
# command with `spark` and `dbutils` in its namespace, and answers one JSON line; `dbutils.fs.ls`
# asks the parent in between.
_CHILD = r"""
import io, json, sys, traceback

_proto_in, _proto_out = sys.stdin, sys.__stdout__
_setup = json.loads(_proto_in.readline())


class _JavaException:
    def __init__(self, text):
        self._text = text

    def toString(self):
        return self._text


class Py4JJavaError(Exception):
    def __init__(self, text):
        super().__init__("An error occurred while calling o0.ls.\n: " + text)
        self.java_exception = _JavaException(text)


class _Conf:
    def get(self, key, *default):
        conf = _setup["conf"]
        if key in conf:
            return conf[key]
        if default:
            return default[0]
        raise Py4JJavaError("java.util.NoSuchElementException: " + key)


class _Spark:
    conf = _Conf()


class FileInfo(tuple):
    __slots__ = ()
    _fields = ("path", "name", "size", "modificationTime")

    def __new__(cls, path, name, size, modificationTime):
        return tuple.__new__(cls, (path, name, size, modificationTime))

    path = property(lambda self: self[0])
    name = property(lambda self: self[1])
    size = property(lambda self: self[2])
    modificationTime = property(lambda self: self[3])

    def __repr__(self):
        return "FileInfo(path=%r, name=%r, size=%r, modificationTime=%r)" % tuple(self)


class _Fs:
    def ls(self, path):
        _proto_out.write(json.dumps({"call": "fs.ls", "path": path}) + "\n")
        _proto_out.flush()
        answer = json.loads(_proto_in.readline())
        if "error" in answer:
            raise Py4JJavaError(answer["error"])
        return [FileInfo(*item) for item in answer["files"]]


class _DBUtils:
    fs = _Fs()


_out = io.StringIO()
sys.stdout = sys.stderr = _out
_namespace = {"__name__": "__main__", "spark": _Spark(), "dbutils": _DBUtils(), "FileInfo": FileInfo}
try:
    exec(compile(_setup["command"], "<command>", "exec"), _namespace)
    _result = {"ok": _out.getvalue()}
except BaseException as _e:
    _result = {
        "ok": None,
        "name": type(_e).__name__,
        "message": str(_e),
        "traceback": "".join(traceback.format_exception(type(_e), _e, _e.__traceback__.tb_next)),
        "output": _out.getvalue(),
    }
_proto_out.write(json.dumps({"done": _result}) + "\n")
_proto_out.flush()
"""


def run_python(command: str, conf: dict[str, str], list_wasbs: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Run `command` as the cluster's REPL would; the API's `results` object.

    `list_wasbs(path)` answers a `dbutils.fs.ls`: `{"files": [[path, name, size, mtime], …]}`
    or `{"error": "<Java exception text>"}`."""
    with tempfile.TemporaryDirectory(prefix="sandbox-cluster-") as scratch:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=scratch,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "LANG": "C.UTF-8"},
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        timer = _kill_after(child, TIME_LIMIT_SECONDS)
        try:
            child.stdin.write(json.dumps({"command": command, "conf": conf}) + "\n")
            child.stdin.flush()
            for line in child.stdout:
                message = json.loads(line)
                if "done" in message:
                    return _results(message["done"])
                if message.get("call") == "fs.ls":
                    child.stdin.write(json.dumps(list_wasbs(str(message["path"]))) + "\n")
                    child.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        finally:
            timer.cancel()
            child.kill()
            child.wait()
    return {
        "resultType": "error",
        "summary": "Command timed out or the Python process exited",
        "cause": f"The command did not finish within {TIME_LIMIT_SECONDS:.0f} seconds, or the REPL died.",
    }


def _kill_after(child: subprocess.Popen[str], seconds: float) -> Any:
    import threading

    timer = threading.Timer(seconds, child.kill)
    timer.daemon = True
    timer.start()
    return timer


def _results(done: dict[str, Any]) -> dict[str, Any]:
    if done.get("ok") is not None:
        return {"resultType": "text", "data": str(done["ok"]).removesuffix("\n")}
    name, message = str(done["name"]), str(done["message"])
    return error_result(name, message, str(done.get("traceback") or ""))


def error_result(name: str, message: str, trace: str = "") -> dict[str, Any]:
    """An error `results` object as the API gives it for a Python exception."""
    summary = f"<span class='ansi-red-fg'>{html.escape(name)}</span>: {html.escape(message)}"
    rule = "-" * 75
    cause = f"{rule}\n{name:<42}Traceback (most recent call last)\n{trace}"
    return {"resultType": "error", "summary": summary, "cause": cause}
