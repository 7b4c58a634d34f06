"""Issue 11 item 1: AEP refreshes on read after expiry; every command notices, rotate converges.

End to end on the sandbox with the real terraform. `provision sandbox expire` moves the
token's expiry into the past, so the next credentials GET makes AEP issue a new token and
revoke the old one — behind the tool's back, as in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.output import error_lines, no_secrets
from tests.helpers.project import Project, access, applied, make_project, revocations, token


def _expire(project: Project) -> None:
    done = project.run("sandbox", "expire", "--env", "default")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_after_expiry_daily_rotate_converges_and_status_is_healthy(tmp_path: Path, mode: str) -> None:
    project = applied(make_project(tmp_path, mode))
    old = token(project)
    _expire(project)
    before = revocations(project)

    rotated = project.run("rotate", "--if-expiring-within", "7", "--auto-approve")

    assert rotated.returncode == 0, rotated.stderr
    assert "rotation needed without a refresh" in rotated.stderr
    assert "AEP issued a new SAS token on" in rotated.stderr
    assert "nothing to do" not in rotated.stderr
    # The GET's auto-refresh was the only revocation: rotate did not refresh again.
    assert revocations(project) == before + 1
    new = token(project)
    assert new != old
    assert access(project) == {"aep-ingest": True, "aep-explore": True}

    status = project.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "NO" not in status.stdout.split()
    no_secrets(rotated, old, new)
    no_secrets(status, old, new)


def test_plan_says_rotation_needed_once_and_the_summary_flags_it(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    old = token(project)
    _expire(project)

    planned = project.run("plan", "--summary", "plan.json")

    assert planned.returncode == 2, planned.stderr
    lines = [line for line in planned.stderr.splitlines() if "ROTATION NEEDED" in line]
    assert len(lines) == 1, planned.stderr
    assert "AEP issued a new SAS token on" in lines[0]
    summary = json.loads((project.dir / "plan.json").read_text())
    assert summary["rotationNeeded"] and "AEP issued a new SAS token" in summary["rotationNeeded"]
    markdown = project.run("plan", "--summary", "plan.md")
    assert markdown.returncode == 2
    text = (project.dir / "plan.md").read_text()
    assert "rotation needed" in text.splitlines()[0].lower()
    no_secrets(planned, old, token(project))
    assert token(project) not in text and old not in text


def test_status_names_rotation_needed(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path, "inline"))
    _expire(project)

    done = project.run("status", "--json")

    assert done.returncode == 4, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "drift"
    assert "AEP issued a new SAS token on" in doc["rotationNeeded"]
    table = project.run("status")
    assert table.returncode == 4
    assert "ROTATION NEEDED" in table.stdout and "provision rotate" in table.stdout
    no_secrets(done, token(project))


def test_apply_refuses_a_saved_plan_whose_token_aep_no_longer_honours(tmp_path: Path) -> None:
    # inline mode: the plan carries the token (secret_scope plans hold none; the tool writes the secret).
    project = applied(make_project(tmp_path, "inline"))
    ingest, explore = project.config["clusters"]
    project.write_config({**project.config, "clusters": [ingest, {**explore, "num_workers": 2}]})
    assert project.run("plan", "--out", "saved.tfplan").returncode == 2
    state_before = (project.root() / "terraform.tfstate").read_bytes()
    refreshed = project.run("sandbox", "refresh", "--env", "default")
    assert refreshed.returncode == 0

    done = project.run("apply", "saved.tfplan", "--auto-approve")

    assert done.returncode == 1, done.stdout + done.stderr
    errors = error_lines(done)
    assert len(errors) == 1, done.stderr
    assert "no longer honours" in errors[0] and "provision plan --env default --out saved.tfplan" in errors[0]
    assert (project.root() / "terraform.tfstate").read_bytes() == state_before
    no_secrets(done, token(project))
