"""Shared fixtures: a throwaway project (provision.yaml + terraform/ + sandbox state) in tmp_path,
driven through the real CLI in a subprocess, with the real terraform binary. What the fixtures
build on lives in `tests/helpers/`."""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.run.context import RunContext
from tests.helpers import project as project_helpers
from tests.helpers.config import BASE_CONFIG
from tests.helpers.pg import PgServer, pg_server
from tests.helpers.project import Project, in_process
from tests.helpers.sandbox import require_azurite


def pytest_configure(config: pytest.Config) -> None:
    """The processes the tests start get a bytecode cache, as an installed package has (pip
    compiles it). CI and these machines set PYTHONDONTWRITEBYTECODE=1, so every `provision` and
    every stand-in provider process (thousands per run) compiled the package from source again.
    Lifted, each module's bytecode goes beside its source once, in `__pycache__` (git ignores it)
    — the checkout's and the tests' own; the standard library's and the venv's were compiled when
    they were installed and are read where they are. (One cache directory for all,
    PYTHONPYCACHEPREFIX, set those aside too: from a fresh clone every process compiled the
    standard library and databricks-sdk again until one of them had written it, ~1.5 CPU-s each.)"""
    if os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # the user's own cache: used as it is
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files marked `long` first (pyproject.toml's addopts keeps this order under xdist), in
    place and stably: each file's own order is unchanged."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session", autouse=True)
def shared_first_applies(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`applied()`'s first applies in a directory every xdist worker of this run shares (the
    run's base temporary directory; a worker's own is under it), removed with it by pytest."""
    base = tmp_path_factory.getbasetemp()
    project_helpers.APPLIED_DIR = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "applied"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with the two-cluster example config (single environment `default`)."""
    (tmp_path / "home").mkdir()
    proj = Project(tmp_path, copy.deepcopy(BASE_CONFIG))
    proj.write_config()
    return proj


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    """A PostgreSQL server for the module's tests (Terraform's pg backend, the lock on pg)."""
    with pg_server() as server:
        yield server


@pytest.fixture(params=["azurite", "oracle"])
def dlz_backend(request: pytest.FixtureRequest) -> str:
    """Each sandbox DLZ backend in turn; `PROVISION_AZURITE=off` selects the oracle in CLI runs."""
    if request.param == "azurite":
        require_azurite()
    return str(request.param)


@pytest.fixture
def out() -> io.StringIO:
    """What an in-process run's console printed."""
    return io.StringIO()


@pytest.fixture
def ctx(project: Project, out: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunContext]:
    """An in-process `RunContext` on the project's sandbox, printing into `out`. inline mode:
    Terraform alone creates everything (secret_scope needs the tool's secret step)."""
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    with in_process(project, monkeypatch, out) as context:
        yield context
