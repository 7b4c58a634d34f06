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
from provisioner.terraform.environment import build_child_env
from provisioner.terraform.guard import PROVIDER_SERVER_ENV
from tests.helpers.processes import descendants

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
Path("server.pid").write_text(str(os.getpid()))
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
            process.guarded([str(terraform), *args]),
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
    keeper = subprocess.Popen(process.guarded([str(terraform), "plan"]), cwd=tmp_path, env=env, stdin=subprocess.PIPE)
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
