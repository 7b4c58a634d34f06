"""Fixtures for the sandbox emulator tests: a real server on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import CLIENT_ID, WORKSPACE_HOST
from tests.helpers.sandbox import EMULATOR_ORG_ID, Workspace


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(
        tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST], client_id=CLIENT_ID, org_id=EMULATOR_ORG_ID
    ) as sb:
        yield sb


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def ws(sandbox: Sandbox, http: requests.Session) -> Workspace:
    return Workspace(sandbox, http)
