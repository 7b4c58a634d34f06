"""A running `Sandbox`: its credentials, a workspace client on it, Azurite for its DLZ, and raw
HTTP against its emulators for the tests that assert wire behaviour."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.aep.landingzone import DlzCredentials
from provisioner.config.model import AuthSettings
from provisioner.databricks.identity import connect
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.sandbox import Sandbox
from provisioner.sandbox.azurite import AZURITE_VERSION, find_azurite
from provisioner.secret import Secret
from tests.helpers.config import CLIENT_ID, WORKSPACE_HOST
from tests.helpers.processes import wait_until
from tests.helpers.project import Project

# The emulator tests' sandbox serves an org of its own (not the base config's), so a test that
# mixed the two up would fail.
EMULATOR_ORG_ID = "1234567890ABCDEF12345678@AdobeOrg"
IMS_SCOPE = "openid,session,AdobeID,read_organizations,additional_info.projectedProductContext"


def credentials(body: dict[str, str], **change: str) -> DlzCredentials:
    """AEP's credentials answer (`change` replacing some of its fields) as the product holds it."""
    body = {**body, **change}
    return DlzCredentials(
        body["containerName"],
        body["storageAccountName"],
        Secret(body["SASToken"]),
        dt.date.fromisoformat(body["expiryDate"]),
    )


def sandbox_pat(sandbox: Sandbox) -> str:
    """The throwaway PAT a Sandbox made for its user (one made with an OAuth client has none)."""
    token = sandbox.databricks_token
    assert token is not None, "this sandbox authenticates with an OAuth client, not a PAT"
    return str(token.reveal())


def sandbox_workspace(sandbox: Sandbox, host: str = WORKSPACE_HOST) -> WorkspaceClient:
    """A workspace client for a running Sandbox, with its own credentials, resolved as a run would."""
    client, _ = connect(host, sandbox.workspace_url(host), AuthSettings(), sandbox.supplied_credentials)
    return client


@dataclass(frozen=True)
class Serving:
    url: str  # what other commands' --sandbox attach to (PROVISION_SANDBOX_SERVER)
    served: dict[str, Any]  # serve.json: its pid and URLs, for clients from outside


@contextmanager
def serving(project: Project, *args: str, env: dict[str, str] | None = None) -> Iterator[Serving]:
    """`provision sandbox serve` for the project in the background, from the moment it says
    where it serves (the barrier) until Ctrl-C stops it. Its output goes to `serve.log` in the
    project, not a pipe a long session would fill (and a scan of the project reads it)."""
    served = project.sandbox_dir / "serve" / "serve.json"
    log = project.dir / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner.main", "sandbox", "serve", *args, "--config", str(project.config_path)],
            cwd=project.dir,
            env=env or project.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "\nshare:" in log.read_text() or process.poll() is not None, "serve to say where it serves")
        assert process.poll() is None, log.read_text()
        (line,) = [line for line in log.read_text().splitlines() if line.startswith("share:")]
        yield Serving(line.split("=", 1)[1].split()[0], json.loads(served.read_text()))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert not served.exists()  # withdrawn when serve stops


def use_azurite(project: Project) -> None:
    """This project's CLI runs put the sandbox's DLZ on Azurite (installed, or the test fails/skips).

    By path: the CLI runs with the project's own HOME, where the per-machine install is not."""
    project.extra_env["PROVISION_AZURITE"] = str(require_azurite())


def require_azurite() -> Path:
    """Tests of Azure Blob semantics run on Azurite: skipped where it is not installed, never on CI.

    README's test command must pass on a fresh machine; `.ci/run` installs Azurite and sets CI,
    so there a missing Azurite is a failure, not a quiet skip."""
    executable = find_azurite(os.environ)
    if executable is not None:
        return executable
    if os.environ.get("CI") != "true":
        pytest.skip(f"needs Azurite: Node.js and `npm install azurite@{AZURITE_VERSION}` (.ci/run installs both)")
    pytest.fail(
        f"Azurite is not installed: `npm install azurite@{AZURITE_VERSION}` and put its node_modules/.bin on PATH "
        "(.ci/run does) — this run must test the DLZ on Azure Blob semantics"
    )


def ims_token(sb: Sandbox, http: requests.Session) -> str:
    resp = http.post(
        f"{sb.ims_url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": sb.client_secret.reveal(),
            "scope": IMS_SCOPE,
        },
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def aep_headers(token: str, sandbox_name: str = "prod") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": CLIENT_ID,
        "x-gw-ims-org-id": EMULATOR_ORG_ID,
        "x-sandbox-name": sandbox_name,
        "Content-Type": "application/json",
    }


class Workspace:
    """A tiny Databricks REST client over `requests`, for asserting wire behaviour."""

    def __init__(self, sb: Sandbox, http: requests.Session) -> None:
        self.base = sb.workspace_url(WORKSPACE_HOST)
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
