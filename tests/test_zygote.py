"""tests/helpers/zygote.py: a forked `provision` does what a fresh interpreter does, as the
tests see it — exit status, stdout and stderr, directory, environment — and is stopped on a
timeout like subprocess stops its child; a forked stand-in provider serves Terraform as a fresh
one does, lives and dies with the process Terraform or its keeper started."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.sandbox import Sandbox
from provisioner.sandbox.provider import PYTHON_ENV, SERVE_ONE_COMMAND
from provisioner.sandbox.store import SandboxStore
from tests.helpers.config import WORKSPACE_HOST
from tests.helpers.processes import descendants, wait_until
from tests.helpers.project import Project, make_project
from tests.helpers.provider_root import SECRET_HCL, Root, cluster_hcl, root_env
from tests.helpers.zygote import PROVIDER_ZYGOTE, ZYGOTE

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


# ---- the stand-in provider, forked through PROVISION_SANDBOX_PYTHON ----------------------------


def _root(sandbox: Sandbox, path: Path, interpreter: str) -> Root:
    env = root_env(sandbox)
    env.pop("PYTHONPATH", None)  # a PYTHON* variable the server lacks would mean a fresh start
    env[PYTHON_ENV] = interpreter
    env["PROVISION_SANDBOX_PROVIDER_STATS"] = str(path.with_name(path.name + "-stats"))
    Path(env["PROVISION_SANDBOX_PROVIDER_STATS"]).mkdir()
    root = Root(path, env)
    root.write(SECRET_HCL + cluster_hcl('"k" = "v"'))
    return root


def _providers(root: Root) -> set[int]:
    """The pids of the provider processes that served `root` (each writes its stats on exit)."""
    return {int(f.stem) for f in Path(root.env["PROVISION_SANDBOX_PROVIDER_STATS"]).glob("*.json")}


def test_a_forked_provider_serves_terraform_as_a_fresh_one(tmp_path: Path) -> None:
    """Terraform starts the provider through the mirror's launcher (three processes a plan): an
    apply and two plans answer the same, and the forked side's providers were the zygote's
    children. Two sandboxes: each side creates the same scope."""
    answers, roots, forks = [], [], []
    for name, interpreter in (("forked", PROVIDER_ZYGOTE.interpreter()), ("fresh", sys.executable)):
        before = len(PROVIDER_ZYGOTE.forked())
        with Sandbox(tmp_path / f"{name}-state", workspace_hosts=[WORKSPACE_HOST]) as sandbox:
            root = _root(sandbox, tmp_path / name, interpreter)
            apply = root.apply()
            plans = [root.plan_rc(), root.plan_rc(TF_VAR_sas="sv=1&sig=other")]
        # Each workspace draws its cluster's id and stamps its own times.
        ids = re.compile(r"\b[0-9]{4}-[0-9]{6}-[a-z0-9]{8}\b|\b[0-9]{13}\b")
        # Terraform refreshes in parallel: the lines' order is its scheduler's.
        texts = [sorted(ids.sub("<id>", out).replace(str(tmp_path / name), "<dir>").splitlines()) for _, out in plans]
        answers.append((apply.stdout.count("created"), [rc for rc, _ in plans], texts))
        roots.append(root)
        forks.append(set(PROVIDER_ZYGOTE.forked()[before:]))  # while this side ran (pids are reused)
    assert answers[0] == answers[1]
    assert answers[0][1] == [0, 2]
    forked, fresh = (_providers(root) for root in roots)
    assert len(forked) >= 3 and forked <= forks[0]  # every one of them forked
    assert fresh and not forks[1]


def test_a_forked_provider_is_in_its_starters_group_and_dies_with_it(tmp_path: Path) -> None:
    """As the keeper starts it (its own process group, stdin a pipe): the served provider is not
    the process started but joins its group, and goes when that process is SIGKILLed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    started = subprocess.Popen(
        [PROVIDER_ZYGOTE.interpreter(), "-m", "provisioner.sandbox.provider", SERVE_ONE_COMMAND],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        process_group=0,
    )
    assert started.stdout is not None
    reattach = json.loads(started.stdout.readline())
    (served,) = (entry["Pid"] for entry in reattach.values())
    assert served != started.pid and served == PROVIDER_ZYGOTE.forked()[-1]
    assert os.getpgid(served) == started.pid
    started.kill()
    started.wait()
    wait_until(lambda: served not in descendants(PROVIDER_ZYGOTE.pid), "the served provider to go with it", timeout=30)


def test_the_interpreter_runs_anything_else_in_the_real_one() -> None:
    """Not `-m provisioner.sandbox.provider`, or an environment the server did not start with:
    the real interpreter takes over the process (same pid)."""
    probe = "import os, sys; print(os.getpid(), sys.executable)"
    started = subprocess.run([PROVIDER_ZYGOTE.interpreter(), "-c", probe], capture_output=True, text=True, check=True)
    assert started.stdout.split()[1] == sys.executable
    changed = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    serve = subprocess.Popen(
        [PROVIDER_ZYGOTE.interpreter(), "-m", "provisioner.sandbox.provider", SERVE_ONE_COMMAND],
        env=changed,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert serve.stdin is not None and serve.stdout is not None
    (served,) = (entry["Pid"] for entry in json.loads(serve.stdout.readline()).values())
    serve.stdin.close()
    assert serve.wait(timeout=30) == 0
    assert served == serve.pid  # not forked: the process itself served


def test_the_zygotes_interpreter_forks_a_command_with_merged_output(project: Project) -> None:
    """The zygote's interpreter in a test's own argv (`provision_python()`): the same exit status
    and output as the real interpreter, stderr merged into stdout as the caller asked, and the
    command was forked."""
    args = ["-m", "provisioner.main", *project.cli_args("plan", "--no-such-option")]
    answers = []
    for python in (ZYGOTE.interpreter(), sys.executable):
        before = len(ZYGOTE.forked())
        done = subprocess.run(
            [python, *args], cwd=project.dir, env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        answers.append((done.returncode, done.stdout, len(ZYGOTE.forked()) - before))
    (forked_rc, forked_out, forks), (fresh_rc, fresh_out, none) = answers
    assert (forked_rc, forked_out) == (fresh_rc, fresh_out) and forked_rc == 2 and b"usage:" in forked_out
    assert (forks, none) == (1, 0)
