"""Shared fixtures: a throwaway project (provision.yaml + terraform/ + sandbox state) in tmp_path,
driven through the real CLI in a subprocess, with the real terraform binary. What the fixtures
build on lives in `tests/helpers/`."""

from __future__ import annotations

import copy
import io
import os
import stat
import tempfile
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
    The cache is one directory outside the checkout, shared by the workers and kept between runs:
    Python writes each file atomically and checks it against its source's mtime. It must be ours
    and never writable by others (a bytecode file planted there would run), and is then closed to
    them; otherwise there is no cache."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    cache = Path(tempfile.gettempdir()) / f"dlz-provisioner-tests-pyc-{os.getuid()}"
    try:
        cache.mkdir(mode=0o700, exist_ok=True)
        found = cache.lstat()
    except OSError:  # something else by that name
        return
    if stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid() and not found.st_mode & 0o022:
        cache.chmod(0o700)
        del os.environ["PYTHONDONTWRITEBYTECODE"]
        os.environ["PYTHONPYCACHEPREFIX"] = str(cache)


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
