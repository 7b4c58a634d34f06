"""tests/helpers/zygote.py: a forked `provision` does what a fresh interpreter does, as the
tests see it — exit status, stdout and stderr, directory, environment — and is stopped on a
timeout like subprocess stops its child."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.sandbox.store import SandboxStore
from tests.helpers.processes import descendants, wait_until
from tests.helpers.project import Project, make_project
from tests.helpers.zygote import ZYGOTE

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the zygote waits with pidfds (Linux)")


def _fresh(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _same_sandbox(text: str, project: Project) -> str:
    """The output as another sandbox would print it: each sandbox makes its own storage account."""
    for where in project.dir.glob("**/.provision/sandbox"):
        for record in SandboxStore(where).dlz_records():
            text = text.replace(record["storageAccountName"], "<account>").replace(record["policyId"], "<policy>")
    return text.replace(str(project.dir), "<dir>")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plan", "--no-such-option"],  # argparse's usage error: exit 2 on stderr
        ["credentials", "--sandbox"],  # PROVISION_CONFIG, relative to the directory it runs in
        ["credentials", "--sandbox", "--config", "missing.yaml"],  # one error line, exit 1
    ],
)
def test_a_forked_command_answers_as_a_fresh_interpreter(tmp_path: Path, args: list[str]) -> None:
    """Two identical projects (a command may change its own): one forked, one fresh."""
    answers = []
    for name in ("forked", "fresh"):
        project = make_project(tmp_path / name)
        (project.dir / "conf").mkdir()
        project.config_path.rename(project.dir / "conf" / "p.yaml")  # found by the variable, from the directory
        env = {**project.env(), "PROVISION_CONFIG": "conf/p.yaml"}
        if name == "forked":
            done = ZYGOTE.run(args, cwd=project.dir, env=env, input=None, timeout=120)
        else:
            done = _fresh(args, project.dir, env)
        answers.append([done.returncode, _same_sandbox(done.stdout, project), _same_sandbox(done.stderr, project)])
    forked, fresh = answers
    assert forked == fresh
    if args == ["credentials", "--sandbox"]:
        assert forked[0] == 0, forked  # found provision.yaml where it ran, by the variable


def test_a_timeout_kills_the_child_and_raises(project: Project) -> None:
    """`sandbox serve` runs until stopped: the timeout ends it, as subprocess.run's would."""
    served = project.sandbox_dir / "serve" / "serve.json"
    with pytest.raises(subprocess.TimeoutExpired):
        ZYGOTE.run(["sandbox", "serve"], cwd=project.dir, env=project.env(), input=None, timeout=5)
    assert served.exists()  # it was serving when the timeout came, and was not stopped cleanly
    wait_until(lambda: not descendants(ZYGOTE.pid), "the timed-out command to end", timeout=30)


def test_a_changed_interpreter_setting_runs_fresh(project: Project) -> None:
    """What the interpreter decides before running code cannot change in a fork: such a call is
    not the zygote's to serve."""
    assert ZYGOTE.serves(project.env())
    assert not ZYGOTE.serves({**project.env(), "PYTHONIOENCODING": "latin-1"})
    assert not ZYGOTE.serves({**project.env(), "LC_ALL": "C"})
