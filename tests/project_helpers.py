"""Helpers for tests that run whole commands on a sandbox project (tests/commands, tests/lifecycle):
building and applying a project, reading the sandbox's token and oracle, checking output."""

from __future__ import annotations

import copy
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provisioner.console import Console
from provisioner.run.context import RunContext, open_context
from provisioner.terraform import TerraformState
from tests.conftest import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_KEY, Project

WS = WORKSPACE_KEY
ORG = BASE_CONFIG["aep"]["org_id"]
SANDBOX = BASE_CONFIG["aep"]["sandbox"]


def make_project(root: Path, mode: str = "secret_scope", **overlay: Any) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    config = copy.deepcopy(BASE_CONFIG)
    config["sas"] = {**config["sas"], "mode": mode}
    config.update(overlay)
    project = Project(root, config)
    project.write_config()
    return project


@contextmanager
def in_process(project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO) -> Iterator[RunContext]:
    """The sandbox and a run's context in this process, as `open_context` gives them to a command."""
    for key, value in project.env().items():
        monkeypatch.setenv(key, value)
    with open_context(project.config_path, Console(out, out, color=False), sandbox=True) as context:
        yield context


def applied(project: Project) -> Project:
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    return project


def token(project: Project) -> str:
    return str(project.store().dlz_credentials(ORG, SANDBOX)["SASToken"])


def revocations(project: Project) -> int:
    return int(project.store().snapshot().get("revoked_tokens", 0))


def cluster_ids(project: Project) -> dict[str, str]:
    return TerraformState(json.loads((project.root() / "terraform.tfstate").read_text())).clusters()


def access(project: Project) -> dict[str, bool]:
    store = project.store()
    return {name: store.dlz_access(WS, cid) for name, cid in cluster_ids(project).items()}


def no_secrets(done: subprocess.CompletedProcess[str], *tokens: str) -> None:
    text = done.stdout + done.stderr
    for secret in (AEP_SECRET, DATABRICKS_PAT, *tokens):
        assert secret not in text
    assert "sig=" not in text.replace("sig=***", "")


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def served(trace: Path, suffix: str) -> bool:
    """Has the sandbox's request journal (PROVISION_SANDBOX_TRACE) a call whose path ends so?"""
    if not trace.exists():
        return False
    return any(json.loads(line)["path"].endswith(suffix) for line in trace.read_text().splitlines())
