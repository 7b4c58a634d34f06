"""The workspace emulator answers as Databricks does where it used to differ (issue 22, item 8),
and serves the reads and the directory clients expect (issue 23): runtimes, node types,
cluster events, policy families, permission levels, tokens, SCIM users/groups/service principals.
Each behaviour's source is in the emulator module's docstring."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.service import compute, iam

from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import Workspace

SPEC: dict[str, Any] = {
    "cluster_name": "c",
    "spark_version": "15.4.x-scala2.12",
    "node_type_id": "Standard_DS3_v2",
    "num_workers": 1,
}


@pytest.fixture
def sdk(sandbox: Sandbox) -> WorkspaceClient:
    assert sandbox.databricks_token is not None
    return WorkspaceClient(
        host=sandbox.workspace_url(WORKSPACE_HOST), token=sandbox.databricks_token.reveal(), auth_type="pat"
    )


def _create(ws: Workspace) -> str:
    return str(ws.ok("clusters/create", SPEC)["cluster_id"])


# ---- issue 22, item 8 ------------------------------------------------------------------------------


def test_permissions_put_replaces_the_whole_list_and_patch_adds(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = _create(ws)
    url = f"{ws.base}/api/2.0/permissions/clusters/{cluster_id}"
    patch = {"access_control_list": [{"group_name": "users", "permission_level": "CAN_ATTACH_TO"}]}
    assert ws.http.patch(url, json=patch, headers=ws.headers, timeout=5).status_code == 200
    put = {"access_control_list": [{"user_name": "someone@example.com", "permission_level": "CAN_RESTART"}]}
    answer = ws.http.put(url, json=put, headers=ws.headers, timeout=5)
    assert answer.status_code == 200, answer.text
    # PUT (SDK PermissionsAPI.set) replaced everything: `users` and the creator's CAN_MANAGE are gone.
    assert sandbox.store.cluster_acl(WORKSPACE_KEY, cluster_id) == {"someone@example.com": "CAN_RESTART"}


def test_an_invalid_pat_is_403_invalid_access_token(sdk: WorkspaceClient, sandbox: Sandbox) -> None:
    bad = WorkspaceClient(host=sandbox.workspace_url(WORKSPACE_HOST), token="dapi0000", auth_type="pat")
    with pytest.raises(sdk_errors.PermissionDenied) as err:
        bad.current_user.me()
    assert "Invalid access token." in str(err.value)


def test_clusters_list_2_0_returns_every_cluster_2_1_pages(ws: Workspace) -> None:
    made = {_create(ws) for _ in range(5)}
    legacy = ws.get("clusters/list", version="2.0").json()
    assert {c["cluster_id"] for c in legacy["clusters"]} == made
    assert "next_page_token" not in legacy
    paged = ws.get("clusters/list", version="2.1").json()
    assert len(paged["clusters"]) < 5 and paged["next_page_token"]


def test_secrets_get_outside_a_notebook_is_400_bad_request(ws: Workspace) -> None:
    ws.ok("secrets/scopes/create", {"scope": "s"})
    ws.ok("secrets/put", {"scope": "s", "key": "k", "string_value": "v"})
    answer = ws.get("secrets/get", version="2.0", scope="s", key="k")
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "BAD_REQUEST"
    assert "v" not in answer.json()["message"].split()


def test_token_create_list_delete(sdk: WorkspaceClient, sandbox: Sandbox) -> None:
    made = sdk.tokens.create(comment="ci", lifetime_seconds=300)
    info = made.token_info
    assert info is not None and info.creation_time and info.expiry_time
    assert info.expiry_time - info.creation_time == 300_000
    forever = sdk.tokens.create(comment="forever").token_info
    # No lifetime: the workspace's maximum (store/tokens.py, issue 26), not "never".
    assert forever is not None and forever.expiry_time and forever.creation_time
    assert forever.expiry_time > forever.creation_time + 300_000
    assert {t.comment for t in sdk.tokens.list()} == {"ci", "forever"}
    inner = WorkspaceClient(host=sandbox.workspace_url(WORKSPACE_HOST), token=made.token_value, auth_type="pat")
    assert inner.current_user.me().user_name == sdk.current_user.me().user_name
    assert info.token_id is not None
    sdk.tokens.delete(info.token_id)
    assert [t.comment for t in sdk.tokens.list()] == ["forever"]
    with pytest.raises(sdk_errors.PermissionDenied):
        inner.current_user.me()  # revoked


# ---- compute reads -----------------------------------------------------------------------------------


def test_runtimes_and_node_types_select_as_the_sdk_does(sdk: WorkspaceClient) -> None:
    assert sdk.clusters.select_spark_version(long_term_support=True) == "16.4.x-scala2.12"
    assert sdk.clusters.select_spark_version(long_term_support=True, ml=True) == "16.4.x-cpu-ml-scala2.12"
    assert sdk.clusters.select_node_type(local_disk=True) == "Standard_F4s"
    assert sdk.clusters.select_node_type(min_memory_gb=30, category="Memory Optimized") == "Standard_E4ds_v4"


def test_cluster_events_record_the_life_of_a_cluster(sdk: WorkspaceClient, ws: Workspace) -> None:
    cluster_id = _create(ws)
    ws.wait_state(cluster_id, "RUNNING")
    ws.ok("clusters/delete", {"cluster_id": cluster_id})
    ws.wait_state(cluster_id, "TERMINATED")
    ws.ok("clusters/start", {"cluster_id": cluster_id})
    ws.wait_state(cluster_id, "RUNNING")
    kinds = [e.type for e in sdk.clusters.events(cluster_id, order=compute.GetEventsOrder.ASC)]
    T = compute.EventType
    assert kinds == [T.CREATING, T.RUNNING, T.TERMINATING, T.STARTING, T.RUNNING]
    only = list(sdk.clusters.events(cluster_id, event_types=[T.STARTING, T.TERMINATING], limit=1))
    assert [e.type for e in only] == [T.STARTING, T.TERMINATING]  # newest first, one a page


def test_policy_families_and_permission_levels(sdk: WorkspaceClient, ws: Workspace) -> None:
    families = list(sdk.policy_families.list(max_results=2))
    assert len(families) == 4 and families[0].policy_family_id
    assert sdk.policy_families.get(families[0].policy_family_id).name == families[0].name
    with pytest.raises(sdk_errors.NotFound):
        sdk.policy_families.get("no-such-family")
    levels = sdk.permissions.get_permission_levels("clusters", _create(ws)).permission_levels or []
    assert [lvl.permission_level for lvl in levels] == [
        iam.PermissionLevel.CAN_ATTACH_TO,
        iam.PermissionLevel.CAN_RESTART,
        iam.PermissionLevel.CAN_MANAGE,
    ]


# ---- SCIM ----------------------------------------------------------------------------------------------


def test_users_life_cycle(sdk: WorkspaceClient) -> None:
    user = sdk.users.create(user_name="ada@example.com", display_name="Ada")
    assert user.id is not None
    assert sdk.users.get(user.id).display_name == "Ada"
    sdk.users.patch(
        user.id,
        operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value="false")],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert sdk.users.get(user.id).active is False
    sdk.users.update(user.id, user_name="ada@example.com", active=True)
    assert sdk.users.get(user.id).active is True
    found = list(sdk.users.list(filter='userName eq "ADA@example.com"'))
    assert [u.id for u in found] == [user.id]
    names = [str(u.user_name) for u in sdk.users.list(attributes="id,userName", sort_by="userName")]
    assert names == sorted(names) and "ada@example.com" in names
    with pytest.raises(sdk_errors.ResourceConflict):
        sdk.users.create(user_name="ada@example.com")
    sdk.users.delete(user.id)
    with pytest.raises(sdk_errors.NotFound):
        sdk.users.get(user.id)


def test_groups_membership_is_what_permissions_see(sdk: WorkspaceClient, sandbox: Sandbox) -> None:
    group = sdk.groups.create(display_name="go-sdk-data")
    assert group.id is not None
    me = sdk.current_user.me()
    assert me.id is not None
    sdk.groups.patch(
        group.id,
        operations=[iam.Patch(op=iam.PatchOp.ADD, value={"members": [{"value": me.id}]})],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert "go-sdk-data" in {g.display for g in sdk.current_user.me().groups or []}
    assert [g.id for g in sdk.groups.list(filter="displayName sw 'go-sdk-'")] == [group.id]
    assert list(sdk.groups.list(filter="displayName eq any-thing")) == []
    with pytest.raises(sdk_errors.BadRequest):
        next(iter(sdk.groups.list(filter="notAFilter")))
    # Demotion as an admin does it (issue 22): PATCH Groups/<admins> removing the member.
    admins = next(iter(sdk.groups.list(filter='displayName eq "admins"')))
    assert admins.id is not None
    sdk.groups.patch(
        admins.id,
        operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{me.id}"]')],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert "admins" not in {g.display for g in sdk.current_user.me().groups or []}
    with pytest.raises(sdk_errors.PermissionDenied):
        sdk.groups.delete(group.id)  # no longer an admin


def test_list_pagination_counts_every_item(sdk: WorkspaceClient) -> None:
    for n in range(7):
        sdk.users.create(user_name=f"u{n}@example.com")
        sdk.service_principals.create(display_name=f"sp{n}")
        sdk.groups.create(display_name=f"g{n}")
    for path, listed in (
        ("Users", lambda: sdk.users.list(count=2)),
        ("Groups", lambda: sdk.groups.list(count=3)),
        ("ServicePrincipals", lambda: sdk.service_principals.list(count=1)),
    ):
        raw = sdk.api_client.do("GET", f"/api/2.0/preview/scim/v2/{path}", query={"count": 1})
        assert raw["itemsPerPage"] == 1
        assert len(list(listed())) == raw["totalResults"]


def test_a_non_admin_reads_names_only_and_cannot_write(sandbox: Sandbox, http: requests.Session) -> None:
    sandbox.store.add_user("bob@example.com", "dapi-bob", admin=False)
    bob = WorkspaceClient(host=sandbox.workspace_url(WORKSPACE_HOST), token="dapi-bob", auth_type="pat")
    listed = list(bob.users.list())
    assert len(listed) == 2 and not any(u.groups for u in listed)
    with pytest.raises(sdk_errors.PermissionDenied):
        bob.groups.create(display_name="mine")
