"""Fixtures for the sandbox emulator tests: a real server on a real socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.sandbox import Sandbox
from tests.conftest import WORKSPACE_HOST, WORKSPACE_KEY, sandbox_pat

HOST = WORKSPACE_HOST
WS_KEY = WORKSPACE_KEY
CLIENT_ID = "0123456789abcdef0123456789abcdef"
ORG_ID = "1234567890ABCDEF12345678@AdobeOrg"
SCOPE = "openid,session,AdobeID,read_organizations,additional_info.projectedProductContext"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[HOST], client_id=CLIENT_ID, org_id=ORG_ID) as sb:
        yield sb


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def ims_token(sb: Sandbox, http: requests.Session) -> str:
    resp = http.post(
        f"{sb.ims_url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": sb.client_secret.reveal(),
            "scope": SCOPE,
        },
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def aep_headers(token: str, sandbox_name: str = "prod") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": CLIENT_ID,
        "x-gw-ims-org-id": ORG_ID,
        "x-sandbox-name": sandbox_name,
        "Content-Type": "application/json",
    }


class Workspace:
    """A tiny Databricks REST client over `requests`, for asserting wire behaviour."""

    def __init__(self, sb: Sandbox, http: requests.Session) -> None:
        self.base = sb.workspace_url(HOST)
        self.http = http
        self.headers = {"Authorization": f"Bearer {sandbox_pat(sb)}"}

    def post(self, endpoint: str, body: dict[str, Any], version: str = "2.1") -> requests.Response:
        return self.http.post(f"{self.base}/api/{version}/{endpoint}", json=body, headers=self.headers, timeout=5)

    def get(self, endpoint: str, version: str = "2.1", **params: str) -> requests.Response:
        return self.http.get(f"{self.base}/api/{version}/{endpoint}", params=params, headers=self.headers, timeout=5)

    def ok(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        version = "2.0" if endpoint.startswith("secrets/") else "2.1"
        resp = self.post(endpoint, body, version)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        resp = self.get("clusters/get", cluster_id=cluster_id)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def wait_state(self, cluster_id: str, state: str, timeout: float = 5.0) -> dict[str, Any]:
        return wait_for(lambda: self.cluster(cluster_id), lambda c: c["state"] == state, timeout)


@pytest.fixture
def ws(sandbox: Sandbox, http: requests.Session) -> Workspace:
    return Workspace(sandbox, http)


def wait_for(
    fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last value: {value}")
        time.sleep(0.05)
