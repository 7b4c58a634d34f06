"""Each fact read once per rotation (issues 24 and 25): before its window a rotation reads the
Terraform state once, lists the secret scope once and GETs AEP's credentials once.

Counted, not timed: AEP's GETs and the scope listings in the sandbox's request journal
(PROVISION_SANDBOX_TRACE), Terraform's `state pull`s through a TERRAFORM_BINARY that logs its
arguments before it runs the real terraform.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.project import Project, applied, make_project


def _logging_terraform(directory: Path) -> tuple[Path, Path]:
    """A terraform that appends its arguments to a log, then is the real one."""
    real = shutil.which("terraform")
    assert real is not None
    log = directory / "terraform-calls.log"
    wrapper = directory / "terraform-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def _rotate_counted(project: Project, *args: str) -> tuple[list[dict[str, object]], list[str]]:
    trace = project.dir / "trace.jsonl"
    wrapper, log = _logging_terraform(project.dir)
    env = project.env(PROVISION_SANDBOX_TRACE=str(trace), TERRAFORM_BINARY=str(wrapper))
    # --no-verify: the closing DLZ probe is `provision verify`'s work, which reads for itself.
    done = project.run("rotate", "--auto-approve", "--no-verify", *args, env=env)
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    return calls, log.read_text().splitlines() if log.exists() else []


def _credential_calls(calls: list[dict[str, object]], method: str) -> list[int]:
    return [
        i for i, c in enumerate(calls) if c["method"] == method and str(c["path"]).endswith("/landingzone/credentials")
    ]


def _listings(calls: list[dict[str, object]]) -> list[int]:
    return [i for i, c in enumerate(calls) if str(c["path"]).endswith("/secrets/list")]


def test_a_rotation_reads_state_scope_and_credentials_once_before_its_window(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path, "secret_scope"))
    calls, terraform = _rotate_counted(project)
    refresh = _credential_calls(calls, "POST")
    assert len(refresh) == 1
    window = refresh[0]
    assert len([i for i in _credential_calls(calls, "GET") if i < window]) == 1
    assert len([i for i in _listings(calls) if i < window]) == 1
    # ... and the fingerprint's bookkeeping after the window uses that listing too; converge
    # reads the new value's timestamp once inside it (only the workspace knows when it was written).
    assert len([i for i in _listings(calls) if i > window]) == 1
    assert len(_credential_calls(calls, "GET")) == 1
    assert [line for line in terraform if line.startswith("state pull")] == ["state pull"]


def test_rotating_onto_a_token_aep_already_issued_reads_each_fact_once(tmp_path: Path) -> None:
    """The path that finds AEP refreshed on read (expiry) and resumes: no second GET, listing or pull."""
    project = applied(make_project(tmp_path, "secret_scope"))
    expired = project.run("sandbox", "expire", "--env", "default")
    assert expired.returncode == 0, expired.stderr
    calls, terraform = _rotate_counted(project, "--if-expiring-within", "7")
    assert _credential_calls(calls, "POST") == []
    assert len(_credential_calls(calls, "GET")) == 1
    write = next(i for i, c in enumerate(calls) if str(c["path"]).endswith("/secrets/put"))
    assert len([i for i in _listings(calls) if i < write]) == 1
    # After the write, converge reads the new value's timestamp once (the workspace's to say).
    assert len(_listings(calls)) == 2
    assert [line for line in terraform if line.startswith("state pull")] == ["state pull"]


@pytest.mark.skipif(os.name != "posix", reason="the logging terraform is a shell script")
def test_inline_rotation_reads_the_state_before_its_window_once(tmp_path: Path) -> None:
    """inline: the pre-flight plan does not change the state, so the read before it stands;
    the read after the window's apply is the one the restarts need (new cluster ids)."""
    project = applied(make_project(tmp_path, "inline"))
    calls, terraform = _rotate_counted(project)
    assert len(_credential_calls(calls, "GET")) == 1
    assert _listings(calls) == []
    pulls = [i for i, line in enumerate(terraform) if line.startswith("state pull")]
    applies = [i for i, line in enumerate(terraform) if line.startswith("apply")]
    assert len(pulls) == 2 and len(applies) == 1
    assert pulls[0] < applies[0] < pulls[1]
