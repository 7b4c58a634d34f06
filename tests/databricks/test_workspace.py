"""WorkspaceClient against the sandbox's workspace emulator, and the sandbox host map."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError, resolve_host
from provisioner.sandbox import Sandbox, workspace_key
from provisioner.secret import Secret

HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
WS = workspace_key(HOST)
SPEC = {"cluster_name": "c", "spark_version": "15.4.x-scala2.12", "num_workers": 0}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(tmp_path, workspace_hosts=[HOST]) as sb:
        monkeypatch.setenv("PROVISION_SANDBOX_HOSTS", json.dumps(sb.hosts()))
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[WorkspaceClient]:
    with WorkspaceClient(HOST, sandbox.databricks_token) as c:
        yield c


def test_resolve_host_is_identity_outside_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVISION_SANDBOX_HOSTS", raising=False)
    assert resolve_host(HOST + "/") == HOST
    assert resolve_host("adb-1.2.azuredatabricks.net") == "https://adb-1.2.azuredatabricks.net"


def test_unknown_host_in_sandbox_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_SANDBOX_HOSTS", json.dumps({HOST: "http://127.0.0.1:9/ws/x"}))
    assert resolve_host(HOST) == "http://127.0.0.1:9/ws/x"
    with pytest.raises(WorkspaceError, match="SANDBOX_UNKNOWN_HOST"):
        WorkspaceClient("https://adb-9.9.azuredatabricks.net", Secret("dapi-x"))


def test_cluster_lifecycle(sandbox: Sandbox, client: WorkspaceClient) -> None:
    cluster_id = client.create_cluster(SPEC)
    assert client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)["state"] == "RUNNING"
    client.resize_cluster(cluster_id, num_workers=2)
    assert client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)["num_workers"] == 2
    client.edit_cluster(cluster_id, {**SPEC, "spark_conf": {"a": "b"}})
    assert client.get_cluster(cluster_id)["state"] == "RESTARTING"
    assert [c["cluster_id"] for c in client.list_clusters()] == [cluster_id]
    client.permanent_delete_cluster(cluster_id)
    with pytest.raises(WorkspaceError) as err:
        client.get_cluster(cluster_id)
    assert err.value.not_found


def test_secrets_never_come_back(client: WorkspaceClient) -> None:
    client.create_scope("dlz")
    client.put_secret("dlz", "sas", Secret("sv=1&sig=topsecret"))
    assert [s["name"] for s in client.list_scopes()] == ["dlz"]
    listed = client.list_secrets("dlz")
    assert [s["key"] for s in listed] == ["sas"] and "topsecret" not in json.dumps(listed)
    client.delete_secret("dlz", "sas")
    client.delete_scope("dlz")


def test_5xx_is_retried_except_for_create(sandbox: Sandbox, client: WorkspaceClient) -> None:
    cluster_id = client.create_cluster(SPEC)
    client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)
    sandbox.store.set_faults(**{"workspace.fail": {"clusters/get": 2, "clusters/create": 1}})
    assert client.get_cluster(cluster_id)["cluster_id"] == cluster_id  # two 500s absorbed
    with pytest.raises(WorkspaceError) as err:
        client.create_cluster(SPEC)  # a retried create could make a second cluster
    assert err.value.status == 500
    assert len(client.list_clusters()) == 1


def test_errors_never_carry_the_token(sandbox: Sandbox) -> None:
    token = Secret("dapi-wrong-token-value")
    with WorkspaceClient(HOST, token) as bad, pytest.raises(WorkspaceError) as err:
        bad.list_clusters()
    assert err.value.status == 401 and err.value.error_code == "UNAUTHENTICATED"
    assert token.reveal() not in str(err.value) and token.reveal() not in repr(err.value.args)
