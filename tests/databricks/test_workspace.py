"""The databricks-sdk facade against the sandbox's workspace emulator: clusters, secrets,
permissions, and errors that never carry a credential."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.clock import FakeClock
from provisioner.config.model import AuthSettings
from provisioner.databricks.identity import connect
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
from provisioner.sandbox import Sandbox
from provisioner.secret import Secret
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY

SPEC = {"cluster_name": "c", "spark_version": "15.4.x-scala2.12", "num_workers": 0}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> WorkspaceClient:
    c, _ = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings(), sandbox.supplied_credentials)
    return c


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


def test_creator_manages_what_it_creates(sandbox: Sandbox, client: WorkspaceClient) -> None:
    cluster_id = client.create_cluster(SPEC)
    assert client.cluster_permission_levels(cluster_id)["sandbox-user@example.com"] == "CAN_MANAGE"
    client.create_scope("dlz")
    assert client.scope_acls("dlz") == {"sandbox-user@example.com": "MANAGE"}


def test_permission_denied_is_a_403_naming_the_level(sandbox: Sandbox, client: WorkspaceClient) -> None:
    cluster_id = client.create_cluster(SPEC)
    client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)
    sandbox.store.set_admin("sandbox-user@example.com", False)
    sandbox.store.set_cluster_permission(WORKSPACE_KEY, cluster_id, "sandbox-user@example.com", "CAN_ATTACH_TO")
    assert client.get_cluster(cluster_id)["state"] == "RUNNING"
    with pytest.raises(WorkspaceError) as err:
        client.restart_cluster(cluster_id)
    assert err.value.permission_denied and "CAN_RESTART" in err.value.message
    with pytest.raises(WorkspaceError) as err:
        client.cluster_permission_levels(cluster_id)
    assert err.value.permission_denied


def test_5xx_is_retried_by_the_sdk_except_where_it_is_not_safe(sandbox: Sandbox, client: WorkspaceClient) -> None:
    cluster_id = client.create_cluster(SPEC)
    client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)
    sandbox.store.set_faults(**{"workspace.fail": {"clusters/create": 1}})
    with pytest.raises(WorkspaceError) as err:
        client.create_cluster(SPEC)  # a 500 is not retried: the create may have happened
    assert err.value.status == 500
    assert len(client.list_clusters()) == 1


def test_errors_never_carry_the_token(sandbox: Sandbox) -> None:
    from databricks.sdk.core import Config

    from provisioner.databricks.sdk import Workspace

    token = Secret("dapi-wrong-token-value-0123456789")
    config = Config(host=sandbox.workspace_url(WORKSPACE_HOST), token=token.reveal(), auth_type="pat")
    bad = WorkspaceClient(Workspace(config), WORKSPACE_HOST)
    with pytest.raises(WorkspaceError) as err:
        bad.list_clusters()
    assert err.value.status == 403
    assert token.reveal() not in str(err.value) and token.reveal() not in repr(err.value.args)


def test_cluster_list_pages_of_100_and_state_filter(sandbox: Sandbox, client: WorkspaceClient) -> None:
    """The facade asks for pages of 100 (the provider's pinned-list size) and follows the tokens."""
    made = {sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(205)}
    pinned = sorted(made)[:3]
    for cid in pinned:
        sandbox.store.pin_cluster(WORKSPACE_KEY, cid)

    assert {c["cluster_id"] for c in client.list_clusters()} == made
    assert sorted(c["cluster_id"] for c in client.list_clusters(pinned_only=True)) == pinned
    listed = client.list_clusters(pinned_only=True)[0]
    assert listed["spark_version"] and listed["state"]  # whole ClusterDetails, as get answers
    states = {str(c["state"]) for c in client.list_clusters()}
    for state in states:
        assert {c["state"] for c in client.list_clusters(states=[state])} == {state}
    assert client.list_clusters(states=["RESIZING"]) == []


def test_errors_keep_the_sdks_type_and_the_predicates_ask_it(sandbox: Sandbox, client: WorkspaceClient) -> None:
    """A missing cluster on `clusters/get` is the SDK's ResourceDoesNotExist (its override for the
    Clusters API's 400); the same words on `clusters/restart` stay InvalidParameterValue, which is
    no "gone": the decision follows the type, not the message."""
    from databricks.sdk.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist

    with pytest.raises(WorkspaceError) as err:
        client.get_cluster("0000-000000-missing0")
    assert isinstance(err.value.error, ResourceDoesNotExist) and err.value.not_found
    with pytest.raises(WorkspaceError) as err:
        client.restart_cluster("0000-000000-missing0")
    assert "does not exist" in err.value.message
    assert isinstance(err.value.error, InvalidParameterValue) and not err.value.not_found
    assert not err.value.bad_request and not err.value.invalid_state  # a kind of BadRequest, not a plain one
    cluster_id = client.create_cluster(SPEC)
    client.wait_for_state(cluster_id, {"RUNNING"}, timeout=10, poll=0.05)
    client.delete_cluster(cluster_id)  # terminates it (clusters/delete)
    client.wait_for_state(cluster_id, {"TERMINATED"}, timeout=10, poll=0.05)
    with pytest.raises(WorkspaceError) as err:
        client.restart_cluster(cluster_id)  # a terminated cluster cannot be restarted
    assert isinstance(err.value.error, InvalidState) and err.value.invalid_state


def test_a_wait_for_a_state_gives_up_at_its_timeout_on_the_clients_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster that takes ten minutes to start and a one-minute wait polled every 10 s: six
    polls' sleeps, then TimeoutError naming the state — on the client's (the run's) clock."""
    monkeypatch.setenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", "600")
    clock = FakeClock()
    with Sandbox(tmp_path / "slow", workspace_hosts=[WORKSPACE_HOST]) as sb:
        url = sb.workspace_url(WORKSPACE_HOST)
        client, _ = connect(WORKSPACE_HOST, url, AuthSettings(), sb.supplied_credentials, clock)
        cluster_id = client.create_cluster(SPEC)
        began = clock.monotonic()
        with pytest.raises(TimeoutError, match=rf"cluster {cluster_id} still PENDING after 60s"):
            client.wait_for_state(cluster_id, {"RUNNING"}, timeout=60, poll=10)
        assert clock.sleeps == [10.0] * 6 and clock.monotonic() - began == 60
        assert client.get_cluster(cluster_id)["state"] == "PENDING"
