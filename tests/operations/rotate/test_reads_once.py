"""Each fact read once per rotation (issues 24 and 25): before its window a rotation reads the
Terraform state once, lists the secret scope once and GETs AEP's credentials once.

Counted, not timed: AEP's GETs and the scope listings in the sandbox's request journal
(PROVISION_SANDBOX_TRACE); the state's reads from inside the `provision` process (its local
backend's file: tests/helpers/state_reads.py), each with the time it was made, against the
journal's; Terraform's runs through a TERRAFORM_BINARY that logs them (and when) before it runs
the real terraform: none of them is a `state pull`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.project import Project, applied, make_project
from tests.helpers.state_reads import logged_terraform, run_counting_state_reads


@dataclass
class Rotation:
    calls: list[dict[str, object]]  # the sandbox's journal
    terraform: list[tuple[float, str]]  # (started, its arguments)
    reads: list[float]  # when the state was read

    def reads_before(self, call: int) -> int:
        return len([t for t in self.reads if t < float(str(self.calls[call]["start"]))])

    def runs(self, prefix: str) -> list[float]:
        return [t for t, args in self.terraform if args.startswith(prefix)]


def _rotate_counted(project: Project, *args: str) -> Rotation:
    trace = project.dir / "trace.jsonl"
    terraform = logged_terraform(project.dir)
    env = project.env(PROVISION_SANDBOX_TRACE=str(trace), TERRAFORM_BINARY=str(terraform.binary))
    # --no-verify: the closing DLZ probe is `provision verify`'s work, which reads for itself.
    done = run_counting_state_reads(project, "rotate", "--auto-approve", "--no-verify", *args, env=env)
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    rotation = Rotation(calls, terraform.runs(), done.reads)
    assert rotation.runs("state pull") == []  # a local backend's state is read without Terraform
    return rotation


def _credential_calls(calls: list[dict[str, object]], method: str) -> list[int]:
    return [
        i for i, c in enumerate(calls) if c["method"] == method and str(c["path"]).endswith("/landingzone/credentials")
    ]


def _listings(calls: list[dict[str, object]]) -> list[int]:
    return [i for i, c in enumerate(calls) if str(c["path"]).endswith("/secrets/list")]


def test_a_rotation_reads_state_scope_and_credentials_once_before_its_window(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path, "secret_scope"))
    rotation = _rotate_counted(project)
    calls = rotation.calls
    refresh = _credential_calls(calls, "POST")
    assert len(refresh) == 1
    window = refresh[0]
    assert len([i for i in _credential_calls(calls, "GET") if i < window]) == 1
    assert len([i for i in _listings(calls) if i < window]) == 1
    # ... and the fingerprint's bookkeeping after the window uses that listing too; converge
    # reads the new value's timestamp once inside it (only the workspace knows when it was written).
    assert len([i for i in _listings(calls) if i > window]) == 1
    assert len(_credential_calls(calls, "GET")) == 1
    assert rotation.reads_before(window) == 1
    assert len(rotation.reads) == 1


def test_rotating_onto_a_token_aep_already_issued_reads_each_fact_once(tmp_path: Path) -> None:
    """The path that finds AEP refreshed on read (expiry) and resumes: no second GET, listing or pull."""
    project = applied(make_project(tmp_path, "secret_scope"))
    expired = project.run("sandbox", "expire", "--env", "default")
    assert expired.returncode == 0, expired.stderr
    rotation = _rotate_counted(project, "--if-expiring-within", "7")
    calls = rotation.calls
    assert _credential_calls(calls, "POST") == []
    assert len(_credential_calls(calls, "GET")) == 1
    write = next(i for i, c in enumerate(calls) if str(c["path"]).endswith("/secrets/put"))
    assert len([i for i in _listings(calls) if i < write]) == 1
    # After the write, converge reads the new value's timestamp once (the workspace's to say).
    assert len(_listings(calls)) == 2
    assert rotation.reads_before(write) == 1
    assert len(rotation.reads) == 1


@pytest.mark.skipif(os.name != "posix", reason="the logging terraform is a shell script")
def test_inline_rotation_reads_the_state_before_its_window_once(tmp_path: Path) -> None:
    """inline: the pre-flight plan does not change the state, so the read before it stands;
    the read after the window's apply is the one the restarts need (new cluster ids)."""
    project = applied(make_project(tmp_path, "inline"))
    rotation = _rotate_counted(project)
    assert len(_credential_calls(rotation.calls, "GET")) == 1
    assert _listings(rotation.calls) == []
    (apply,) = rotation.runs("apply")
    assert len(rotation.reads) == 2
    assert rotation.reads[0] < apply < rotation.reads[1]
