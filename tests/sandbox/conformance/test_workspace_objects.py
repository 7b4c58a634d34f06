"""Permissions, secrets, tokens and cluster policies: databricks-sdk-go `internal/permissions_test.go`,
`secrets_test.go`, `tokens_test.go`, `clusterpolicies_test.go`. (Notebooks are not emulated:
TestAccGenericPermissions runs on a cluster, the object the sandbox has.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from databricks.sdk import WorkspaceClient, errors
from databricks.sdk.service import iam, workspace


def test_generic_permissions(w: WorkspaceClient, default_cluster: str, random: Callable[[int], str]) -> None:
    """sdk-go TestAccGenericPermissions: levels, then Set (replaces the list), then Get."""
    levels = w.permissions.get_permission_levels("clusters", default_cluster)
    assert len(levels.permission_levels or []) > 1
    group = w.groups.create(display_name=f"go-sdk-{random(8)}")
    assert group.id is not None
    try:
        w.permissions.set(
            "clusters",
            default_cluster,
            access_control_list=[
                iam.AccessControlRequest(
                    group_name=group.display_name, permission_level=iam.PermissionLevel.CAN_RESTART
                ),
                iam.AccessControlRequest(
                    user_name=w.current_user.me().user_name, permission_level=iam.PermissionLevel.CAN_MANAGE
                ),
            ],
        )
        got = w.permissions.get("clusters", default_cluster)
        granted = {a.group_name or a.user_name: a for a in got.access_control_list or []}
        assert group.display_name in granted
    finally:
        w.groups.delete(group.id)


def test_secrets(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccSecrets: scope, secret, a group's MANAGE ACL beside the creator's."""
    scope, key = f"scope-{random(8)}", f"key-{random(8)}"
    w.secrets.create_scope(scope)
    try:
        assert len(list(w.secrets.list_scopes())) >= 1
        w.secrets.put_secret(scope, key, string_value=f"dummy{random(8)}")
        assert len(list(w.secrets.list_secrets(scope))) == 1
        group = w.groups.create(display_name=f"go-sdk-{random(8)}")
        assert group.id is not None and group.display_name is not None
        w.secrets.put_acl(scope, group.display_name, workspace.AclPermission.MANAGE)
        assert len(list(w.secrets.list_acls(scope))) == 2
        w.secrets.delete_acl(scope, group.display_name)
        w.groups.delete(group.id)
        w.secrets.delete_secret(scope, key)
    finally:
        w.secrets.delete_scope(scope)


def test_tokens(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccTokens: create with a lifetime, list, find by comment, use it, delete."""
    token = w.tokens.create(comment=f"go-sdk-{random(8)}", lifetime_seconds=300)
    assert token.token_info is not None and token.token_info.token_id is not None
    try:
        everything = list(w.tokens.list())
        assert len(everything) >= 1
        by_comment = [t for t in everything if t.comment == token.token_info.comment]
        assert [t.token_id for t in by_comment] == [token.token_info.token_id]
        inner = WorkspaceClient(host=w.config.host, token=token.token_value, auth_type="pat")
        assert inner.current_user.me().user_name == w.current_user.me().user_name
    finally:
        w.tokens.delete(token.token_info.token_id)


def test_cluster_policy_families(w: WorkspaceClient) -> None:
    """sdk-go TestAccClusterPolicyFamilies."""
    families = list(w.policy_families.list())
    assert families[0].policy_family_id is not None
    assert w.policy_families.get(families[0].policy_family_id).name != ""


def test_cluster_policies(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccClusterPolicies."""
    definition = {"spark_conf.spark.databricks.delta.preview.enabled": {"type": "fixed", "value": True}}
    created = w.cluster_policies.create(name=f"go-sdk-{random(8)}", definition=json.dumps(definition))
    assert created.policy_id is not None
    try:
        policy = w.cluster_policies.get(created.policy_id)
        by_name = [p for p in w.cluster_policies.list() if p.name == policy.name]
        assert [p.policy_id for p in by_name] == [policy.policy_id]
        everything = list(w.cluster_policies.list())
        assert len({p.name: p.policy_id for p in everything}) == len(everything)
        definition["spark_conf.spark.databricks.delta.preview.enabled"]["value"] = False
        assert policy.policy_id is not None
        w.cluster_policies.edit(policy.policy_id, name=policy.name, definition=json.dumps(definition))
    finally:
        w.cluster_policies.delete(created.policy_id)
    with pytest.raises(errors.base.DatabricksError):
        w.cluster_policies.get(created.policy_id)
