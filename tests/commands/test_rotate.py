"""`provision rotate` end to end on the sandbox: real terraform, stand-in provider, DLZ oracle."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import BASE_CONFIG, WORKSPACE_KEY
from tests.helpers.output import error_lines, no_secrets
from tests.helpers.project import Project, access, applied, cluster_ids, make_project, token
from tests.helpers.zygote import provision_python

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

WINDOW_RE = re.compile(r"revocation window: (\d+\.\d+)s")
RESUME_RE = re.compile(r"(provision rotate --resume [^\n`]*?)(?:`|$)", re.MULTILINE)


def _journal_path(project: Project) -> Path:
    """The rotation journal of a local state: beside it (provisioner.lock.local)."""
    return project.root() / "terraform.tfstate.dlz-rotation.json"


def _unfinished(project: Project) -> bool:
    path = _journal_path(project)
    return path.exists() and json.loads(path.read_text())["phase"] != "converged"


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_rotate_puts_the_new_token_live_and_prints_the_window(tmp_path: Path, mode: str) -> None:
    project = applied(make_project(tmp_path, mode))
    old = token(project)
    assert all(access(project).values())

    done = project.run("rotate", "--auto-approve", "--if-expiring-within", "90")

    assert done.returncode == 0, done.stderr
    window = WINDOW_RE.search(done.stdout)
    assert window is not None, done.stdout
    assert 0 < float(window.group(1)) < 60
    # The closing probe, as a real run prints it. (That the refresh revoked the old token at
    # once, before any restart: test_failure_after_refresh_prints_the_command_that_recovers.)
    assert "default: 2/2 running clusters reach the DLZ" in done.stdout + done.stderr
    new = token(project)
    assert new != old
    assert old not in [t["SASToken"] for t in project.store().valid_tokens()]
    assert access(project) == {"aep-ingest": True, "aep-explore": True}
    store = project.store()
    key = next(
        k for k in store.effective_spark_conf(WORKSPACE_KEY, cluster_ids(project)["aep-ingest"]) if "fs.azure.sas" in k
    )
    for cid in cluster_ids(project).values():
        assert store.effective_spark_conf(WORKSPACE_KEY, cid)[key] == new
    assert not _unfinished(project)
    no_secrets(done, old, new)


def test_not_due_does_nothing(project: Project) -> None:
    before = token(project)
    done = project.run("rotate", "--auto-approve", "--if-expiring-within", "30")
    assert done.returncode == 0, done.stderr
    assert "not within 30 days — nothing to do" in done.stderr
    assert token(project) == before
    assert not project.root().exists()  # nothing rendered, nothing refreshed


@pytest.mark.parametrize(("mode", "endpoint"), [("inline", "clusters/edit"), ("secret_scope", "clusters/restart")])
def test_failure_after_refresh_prints_the_command_that_recovers(tmp_path: Path, mode: str, endpoint: str) -> None:
    project = applied(make_project(tmp_path, mode))
    old = token(project)
    # Enough failures to outlast the client's retries: the apply fails after the refresh.
    project.store().set_faults(**{"workspace.fail": {endpoint: 20}})

    failed = project.run("rotate", "--auto-approve")

    assert failed.returncode == 1
    errors = error_lines(failed)
    assert len(errors) == 1, failed.stderr
    command = RESUME_RE.search(errors[0])
    assert command is not None, errors[0]
    argv = shlex.split(command.group(1))
    assert argv[:5] == ["provision", "rotate", "--resume", "--env", "default"]
    assert {"--sandbox", "--auto-approve", "--config"} <= set(argv)
    refreshed = token(project)
    assert refreshed != old
    # The dangerous window is open: the old token is revoked and no cluster can reach the DLZ.
    assert not any(access(project).values())
    assert _unfinished(project)
    assert "sig" not in _journal_path(project).read_text()

    # A plain rotate (the next scheduled run, on any runner) finishes it instead of refreshing
    # again; the fault is still there, so it fails the same way and leaves the journal unfinished.
    again = project.run("rotate", "--auto-approve")
    assert again.returncode == 1
    assert "stopped after phase" in again.stderr and "finishing it (no new refresh)" in again.stderr
    assert token(project) == refreshed  # no second refresh
    assert _unfinished(project)

    project.store().clear_faults()
    resumed = subprocess.run(
        [provision_python(), "-m", "provisioner.main", *argv[1:]],
        cwd=project.dir,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert token(project) == refreshed  # --resume never refreshes
    assert access(project) == {"aep-ingest": True, "aep-explore": True}
    assert not _unfinished(project)
    no_secrets(failed, old, refreshed)
    no_secrets(resumed, old, refreshed)


def test_a_scope_that_cannot_be_written_stops_the_rotation_before_the_refresh(tmp_path: Path) -> None:
    """secret_scope: the put is the one workspace write inside the window; pre-flight proves it works."""
    project = applied(make_project(tmp_path, "secret_scope"))
    old = token(project)
    project.store().set_faults(**{"workspace.fail": {"secrets/put": 20}})
    try:
        done = project.run("rotate", "--auto-approve")
    finally:
        project.store().clear_faults()
    assert done.returncode == 1
    errors = error_lines(done)
    assert len(errors) == 1 and "cannot write secret aep-dlz/" in errors[0], done.stderr
    assert token(project) == old  # never refreshed: nothing was revoked
    assert not _unfinished(project)
    assert all(access(project).values())


# ---- bad input: one clear line, exit 1, nothing changed -----------------------------------


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One applied project for the failure cases; each case leaves it unchanged (that is the point)."""
    fast_aep = {**BASE_CONFIG["aep"], "retries": 1, "max_retry_seconds": 1}
    project = applied(make_project(tmp_path_factory.mktemp("steady"), "secret_scope", aep=fast_aep))
    yield project


@pytest.mark.parametrize(
    ("knobs", "said"),
    [
        ({"aep.status_429": 50, "aep.retry_after": 0}, "429"),
        ({"aep.status_5xx": 50, "aep.status_5xx_code": 503}, "503"),
        ({"aep.status_5xx": 50, "aep.status_5xx_code": 500}, "500"),
        ({"aep.html": 50}, "502"),
        # The gateway's status knob also answers 401/403 (not retried): an expired or wrong secret.
        ({"aep.status_5xx": 1, "aep.status_5xx_code": 401}, "answered 401"),
        ({"aep.status_5xx": 1, "aep.status_5xx_code": 403}, "answered 403"),
    ],
)
def test_aep_failures_leave_everything_intact(steady: Project, knobs: dict[str, Any], said: str) -> None:
    state_before = (steady.root() / "terraform.tfstate").read_bytes()
    token_before = token(steady)
    steady.store().set_faults(**knobs)
    try:
        done = steady.run("rotate", "--auto-approve")
    finally:
        steady.store().clear_faults()
    assert done.returncode == 1
    errors = error_lines(done)
    assert len(errors) == 1, done.stderr
    assert "AEP DLZ credentials" in errors[0]
    assert said.lower() in errors[0].lower()
    assert (steady.root() / "terraform.tfstate").read_bytes() == state_before
    assert token(steady) == token_before
    assert not _unfinished(steady)
    assert all(access(steady).values())


def test_no_credentials_is_one_line_before_any_call(steady: Project) -> None:
    env = {k: v for k, v in steady.env().items() if k != "AEP_CLIENT_SECRET"}
    done = steady.run("rotate", "--auto-approve", sandbox=False, env=env)
    assert done.returncode == 1
    errors = error_lines(done)
    assert len(errors) == 1 and "AEP_CLIENT_SECRET" in errors[0], done.stderr
    assert not _unfinished(steady)


def test_refuses_without_a_terminal_or_auto_approve(steady: Project) -> None:
    token_before = token(steady)
    done = steady.run("rotate")
    assert done.returncode == 1
    assert "--auto-approve" in error_lines(done)[0]
    assert token(steady) == token_before
