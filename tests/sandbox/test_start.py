"""provisioner/sandbox/__init__.py: the port is taken at once, the emulators are made when the
first client connects, and a failure to make them refuses clients instead of leaving them waiting."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from provisioner.sandbox import Sandbox


def test_the_first_client_is_answered_and_principals_are_in_the_store_at_once(tmp_path: Path) -> None:
    hosts = ["https://adb-1.1.azuredatabricks.net"]
    with Sandbox(tmp_path / "sb", workspace_hosts=hosts, databricks_token="dapi-x") as sb:
        # Registered before any client connected: a test (or another process) may change them.
        principal = sb.store.principal_for_token("dapi-x")
        assert principal is not None and principal["userName"] == "sandbox-user@example.com"
        answer = requests.get(f"{sb.base_url}/ws/adb-1.1.azuredatabricks.net/api/2.0/preview/scim/v2/Me", timeout=10)
        assert answer.status_code == 401  # the workspace emulator answered (no credentials sent)


def test_a_failed_start_refuses_clients_and_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Sandbox) -> None:
        raise RuntimeError("emulators could not be made")

    monkeypatch.setattr(Sandbox, "_start_server", broken)
    with Sandbox(tmp_path / "sb") as sb:
        port = int(sb.base_url.rsplit(":", 1)[1])
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{sb.base_url}/ims/token/v3", timeout=10)  # refused or reset, not a 10 s wait
        with pytest.raises(RuntimeError, match="emulators could not be made"):
            sb.aep  # noqa: B018
        with socket.socket() as probe, pytest.raises(OSError):
            probe.settimeout(5)
            probe.connect(("127.0.0.1", port))
