"""Terraform's keeper and a provider server (guard.py, PROVIDER_SERVER_ENV): started before a
Terraform command that uses providers, handed to it as TF_REATTACH_PROVIDERS, in its process
group, and gone when it is; never started for other commands; a server that does not come up
leaves Terraform to start its providers itself.

A stand-in `terraform` (a script) records what it was given; a stand-in server prints its line
and records how it ended. The real pair (Terraform, the sandbox's provider) is tested in
tests/sandbox/test_provider.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.terraform import process
from provisioner.terraform.early import EarlyKeeper
from provisioner.terraform.environment import ChildEnv, build_child_env
from provisioner.terraform.guard import PROVIDER_SERVER_ENV, keeper_command
from tests.helpers.processes import cmdline, descendants

REATTACH = '{"registry.terraform.io/databricks/databricks": {"Test": true}}'

# Records its environment's TF_REATTACH_PROVIDERS and its process group, then exits 0 — or, as
# Terraform does on SIGINT, finishes and exits 1 (`wait` as its first argument: wait for it).
TERRAFORM = """\
import json, os, signal, sys, time
from pathlib import Path
def stop(*_):
    Path("terraform-stopped").write_text("yes")
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
Path("terraform.json").write_text(json.dumps({
    "reattach": os.environ.get("TF_REATTACH_PROVIDERS"), "group": os.getpgrp(), "pid": os.getpid()}))
print("terraform ran", flush=True)
if "wait" in sys.argv[2:]:
    time.sleep(300)
"""

# Prints its line (or, with `silent`, nothing and exits; with `hang`, nothing and waits), then
# serves until end of file on stdin.
SERVER = """\
import os, sys, time
from pathlib import Path
Path("server.pid.tmp").write_text(str(os.getpid()))
os.replace("server.pid.tmp", "server.pid")  # whole when it appears: the tests read it then
if "silent" in sys.argv[1:]:
    sys.exit(3)
if "hang" in sys.argv[1:]:
    time.sleep(300)
print(%r, flush=True)
while os.read(0, 65536):
    pass
Path("server-stopped").write_text("end of file on stdin")
"""


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def _setup(tmp_path: Path, *server_args: str) -> tuple[Path, dict[str, str]]:
    terraform = _script(tmp_path / "terraform", TERRAFORM)
    server = _script(tmp_path / "server", SERVER % REATTACH)
    env = {**os.environ, PROVIDER_SERVER_ENV: "\n".join([str(server), *server_args])}
    return terraform, env


def _keeper(tmp_path: Path, terraform: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The keeper as `process.run` starts it: its stdin a pipe we hold (its end of file would
    mean `provision` is gone), its output to files."""
    out, err = tmp_path / "keeper.out", tmp_path / "keeper.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        keeper = subprocess.Popen(
            keeper_command([str(terraform), *args]),
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
        )
        code = keeper.wait(timeout=60)
    assert keeper.stdin is not None
    keeper.stdin.close()
    return subprocess.CompletedProcess(keeper.args, code, out.read_text(), err.read_text())


def test_a_plan_gets_the_server_in_its_group_and_the_server_ends_with_it(tmp_path: Path) -> None:
    terraform, env = _setup(tmp_path)
    done = _keeper(tmp_path, terraform, env, "plan", "-input=false")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "terraform ran\n"
    seen = json.loads((tmp_path / "terraform.json").read_text())
    server_pid = int((tmp_path / "server.pid").read_text())
    assert seen["reattach"] == REATTACH
    assert seen["group"] == server_pid  # one group: a kill of Terraform's group takes the server too
    assert (tmp_path / "server-stopped").read_text() == "end of file on stdin"  # it ended, not killed
    assert not Path(f"/proc/{server_pid}").exists()


@pytest.mark.parametrize("args", [("state", "pull"), ("init", "-input=false"), ("version",)])
def test_commands_without_providers_start_no_server(tmp_path: Path, args: tuple[str, ...]) -> None:
    terraform, env = _setup(tmp_path)
    done = _keeper(tmp_path, terraform, env, *args)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "terraform.json").read_text())["reattach"] is None
    assert not (tmp_path / "server.pid").exists()


def test_a_server_that_does_not_come_up_leaves_terraform_to_start_its_providers(tmp_path: Path) -> None:
    terraform, env = _setup(tmp_path, "silent")
    done = _keeper(tmp_path, terraform, env, "apply", "-input=false")
    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "terraform.json").read_text())
    assert seen["reattach"] is None
    assert seen["group"] == seen["pid"]  # its own group, as without a server
    assert (tmp_path / "server.pid").exists()


def test_a_sigterm_while_the_server_starts_stops_both_at_once(tmp_path: Path) -> None:
    """`provision`'s third Ctrl-C (SIGTERM to the keeper) before the server has answered: the
    keeper does not wait out the server's start-up, and nothing is left."""
    terraform, env = _setup(tmp_path, "hang")
    keeper = subprocess.Popen(keeper_command([str(terraform), "plan"]), cwd=tmp_path, env=env, stdin=subprocess.PIPE)
    deadline = time.monotonic() + 60  # a hang guard: the pid file, not the time, decides
    while not (tmp_path / "server.pid").exists():
        assert keeper.poll() is None and time.monotonic() < deadline, "the server never started"
        time.sleep(0.02)
    server_pid = int((tmp_path / "server.pid").read_text())
    keeper.send_signal(signal.SIGTERM)
    code = keeper.wait(timeout=20)  # the server's start-up allowance is 30 s
    assert keeper.stdin is not None
    keeper.stdin.close()
    assert code == -signal.SIGKILL  # Terraform was killed at once, and the keeper dies as it did (no traceback)
    assert not Path(f"/proc/{server_pid}").exists()


def test_without_the_variable_nothing_changes(tmp_path: Path) -> None:
    terraform, env = _setup(tmp_path)
    del env[PROVIDER_SERVER_ENV]
    done = _keeper(tmp_path, terraform, env, "plan")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "terraform.json").read_text())["reattach"] is None
    assert not (tmp_path / "server.pid").exists()


def test_a_users_variable_never_reaches_the_keeper() -> None:
    """Only a target names a server: one in the user's environment is dropped, with a warning."""
    warnings: list[str] = []
    child = build_child_env({PROVIDER_SERVER_ENV: "/bin/sh", "PATH": "/usr/bin"}, warn=warnings.append)
    assert PROVIDER_SERVER_ENV not in child.values
    assert any(PROVIDER_SERVER_ENV in line for line in warnings), warnings
    targeted = build_child_env({}, extra={PROVIDER_SERVER_ENV: "/x"})
    assert targeted.values[PROVIDER_SERVER_ENV] == "/x"


def test_when_provision_is_killed_terraform_finishes_and_the_server_goes_with_it(tmp_path: Path) -> None:
    """kill -9 of `provision` mid-command: Terraform gets its SIGINT and finishes (the server still
    serves it until then), then neither outlives the keeper."""
    terraform, env = _setup(tmp_path)
    driver = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from provisioner.terraform import process\n"
        "from provisioner.terraform.environment import ChildEnv\n"
        f"argv = [{str(terraform)!r}, 'apply', 'wait']\n"
        "process.run(argv, cwd=Path('.'), env=ChildEnv(dict(os.environ)), out=print)\n"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", driver],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60  # a hang guard: the files, not the time, decide
    while not (tmp_path / "terraform.json").exists():
        assert caller.poll() is None and time.monotonic() < deadline, "terraform never started"
        time.sleep(0.02)
    server_pid = int((tmp_path / "server.pid").read_text())
    assert server_pid in descendants(caller.pid)
    caller.kill()
    caller.wait()
    while not (tmp_path / "server-stopped").exists():
        assert time.monotonic() < deadline, "the server outlived Terraform"
        time.sleep(0.02)
    assert (tmp_path / "terraform-stopped").read_text() == "yes"


# ---- a keeper started before its command (guard.py "Started early", early.py `EarlyKeeper`)

# An early server (ENVIRON_ON_STDIN its last argument): records its pid at once, then reads the
# directory and environment the keeper hands it (with guard.read_strings, as the stand-in's
# `read_environ` reads them), records them, and serves as SERVER does; end of file before them
# ends it unused. Started without that argument it serves at once (`<name>-fresh.*`).
EARLY_SERVER = """\
import json, os, sys
from pathlib import Path
from provisioner.terraform.guard import ENVIRON_ON_STDIN, read_strings
early = sys.argv[-1] == ENVIRON_ON_STDIN
name = sys.argv[1] + ("" if early else "-fresh")
out = Path(sys.argv[2])  # an early one starts in the caller's directory, not the root's
(out / (name + ".pid.tmp")).write_text(str(os.getpid()))
os.replace(out / (name + ".pid.tmp"), out / (name + ".pid"))  # whole when it appears
cwd, entries = (read_strings(0), read_strings(0)) if early else ([os.getcwd()], [])
if cwd is None or entries is None:
    sys.exit(0)  # end of file before its environment: stopped unused
environ = dict(e.split("=", 1) for e in entries)
(out / (name + ".json")).write_text(json.dumps({"cwd": cwd[0], "environ": environ, "before": dict(os.environ)}))
print(%r, flush=True)
while os.read(0, 65536):
    pass
(out / (name + "-stopped")).write_text("end of file on stdin")
"""


def _wait_for(path: Path, *alive: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 60  # a hang guard: the file, not the time, decides
    while not path.exists():
        assert all(p is None or p.poll() is None for p in alive) and time.monotonic() < deadline, f"no {path.name}"
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not Path(f"/proc/{pid}").exists()


def _early_setup(tmp_path: Path, *names: str) -> tuple[Path, dict[str, list[str]], dict[str, str]]:
    """The stand-in terraform, an early server command per name, and the interpreter's
    environment: the server script imports the keeper (guard.py) from this checkout."""
    terraform = _script(tmp_path / "terraform", TERRAFORM)
    script = _script(tmp_path / "early-server", EARLY_SERVER % REATTACH)
    servers = {name: [str(script), name, str(tmp_path)] for name in names}
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return terraform, servers, environ


def _run(argv: list[str], cwd: Path, env: dict[str, str], early: EarlyKeeper) -> process.Completed:
    lines: list[str] = []
    done = process.run(argv, cwd=cwd, env=ChildEnv(env), out=lines.append, early=early)
    assert done.returncode == 0, "\n".join(lines) + done.stderr_tail
    return done


def test_an_early_keeper_runs_the_command_it_is_handed_on_the_server_it_started_before(tmp_path: Path) -> None:
    terraform, servers, environ = _early_setup(tmp_path, "early")
    root = tmp_path / "root"
    root.mkdir()
    early = EarlyKeeper.start(servers["early"], {**environ, "AEP_CLIENT_SECRET": "s3cret"})
    try:
        _wait_for(tmp_path / "early.pid")  # up before any command is known
        server_pid = int((tmp_path / "early.pid").read_text())
        command_env = {**environ, PROVIDER_SERVER_ENV: "\n".join(servers["early"]), "ONLY_IN_THE_COMMAND": "1"}
        _run([str(terraform), "plan", "-input=false"], root, command_env, early)
    finally:
        early.close()
    seen = json.loads((root / "terraform.json").read_text())
    assert seen["reattach"] == REATTACH and seen["group"] == server_pid  # its server, in one group
    handed = json.loads((tmp_path / "early.json").read_text())
    assert handed["cwd"] == str(root)  # the server runs where Terraform runs, as one started then
    assert handed["environ"] == command_env
    # Until then it had what an interpreter needs to start, not the secrets of `provision`'s environment.
    assert "AEP_CLIENT_SECRET" not in handed["before"] and "ONLY_IN_THE_COMMAND" not in handed["before"]
    assert handed["before"]["PYTHONPATH"] == environ["PYTHONPATH"]
    assert (tmp_path / "early-stopped").read_text() == "end of file on stdin"
    assert _gone(server_pid)


def test_a_command_without_providers_leaves_the_early_keeper_to_the_next_one(tmp_path: Path) -> None:
    terraform, servers, environ = _early_setup(tmp_path, "early")
    env = {**environ, PROVIDER_SERVER_ENV: "\n".join(servers["early"])}
    early = EarlyKeeper.start(servers["early"], environ)
    try:
        _run([str(terraform), "init", "-input=false"], tmp_path, env, early)
        assert json.loads((tmp_path / "terraform.json").read_text())["reattach"] is None
        assert not (tmp_path / "early.json").exists()  # init ran under a keeper of its own
        _run([str(terraform), "apply", "-input=false"], tmp_path, env, early)
    finally:
        early.close()
    assert json.loads((tmp_path / "terraform.json").read_text())["reattach"] == REATTACH
    assert (tmp_path / "early.json").exists()


@pytest.mark.parametrize("differs", ["command", "debug log"])
def test_an_early_server_that_is_not_the_one_named_is_stopped_and_that_one_started(
    tmp_path: Path, differs: str
) -> None:
    """The early server is a guess: the command's environment decides. A TF_LOG* there sends
    the server's stderr to ours, which the early one, started quiet, cannot do."""
    terraform, servers, environ = _early_setup(tmp_path, "early")
    if differs == "command":
        env = {**environ, PROVIDER_SERVER_ENV: str(_script(tmp_path / "server", SERVER % REATTACH))}
    else:
        env = {**environ, PROVIDER_SERVER_ENV: "\n".join(servers["early"]), "TF_LOG": "ERROR"}
    early = EarlyKeeper.start(servers["early"], environ)
    try:
        _wait_for(tmp_path / "early.pid")
        early_pid = int((tmp_path / "early.pid").read_text())
        _run([str(terraform), "plan"], tmp_path, env, early)
    finally:
        early.close()
    seen = json.loads((tmp_path / "terraform.json").read_text())
    started = tmp_path / ("server.pid" if differs == "command" else "early-fresh.pid")
    assert seen["reattach"] == REATTACH and seen["group"] == int(started.read_text())  # the one named
    assert not (tmp_path / "early.json").exists()  # never handed anything: it was killed
    assert _gone(early_pid)


def test_an_early_keeper_nobody_takes_ends_with_its_server(tmp_path: Path) -> None:
    _, servers, environ = _early_setup(tmp_path, "early")
    early = EarlyKeeper.start(servers["early"], environ)
    _wait_for(tmp_path / "early.pid")
    server_pid = int((tmp_path / "early.pid").read_text())
    early.close()
    assert _gone(server_pid)
    assert early.take(["terraform", "plan"], tmp_path, ChildEnv(environ)) is None  # closed: nothing to take


def test_when_provision_is_killed_before_its_command_the_early_keeper_and_server_go(tmp_path: Path) -> None:
    """kill -9 of `provision` while it still loads: the keeper's stdin reaches end of file, it
    stops its server and exits; nothing is left."""
    _, servers, environ = _early_setup(tmp_path, "early")
    driver = (
        "import os, sys\n"
        "from provisioner.terraform.early import EarlyKeeper\n"
        f"early = EarlyKeeper.start({servers['early']!r}, dict(os.environ))\n"
        "sys.stdin.read()\n"  # blocks: killed while it waits, as `provision` while it loads
    )
    caller = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path, env=environ, stdin=subprocess.PIPE)
    try:
        _wait_for(tmp_path / "early.pid", caller)
        server_pid = int((tmp_path / "early.pid").read_text())
        [keeper_pid] = [pid for pid in descendants(caller.pid) if "--await-command" in (cmdline(pid) or "")]
    finally:
        caller.kill()
        caller.wait()
    assert _gone(keeper_pid) and _gone(server_pid)
