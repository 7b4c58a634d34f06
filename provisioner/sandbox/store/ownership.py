"""Cluster owners and `{{secrets/<scope>/<key>}}` references: who may add one, who resolves it.

Databricks, "Use a secret in a Spark configuration property or environment variable"
(docs.databricks.com/security/secrets/secrets-spark-conf-env-var, "Requirements"):
- "Cluster owners must have CAN READ permission on the secret scope." The reference is
  resolved when the cluster starts, with the owner's permissions — a READ granted to a
  group the owner is in counts like a direct grant (the Secret ACL API grants "a user or
  group", and "a user or group will use the most powerful permission available to them":
  databricks-sdk-py `service/workspace.py` `SecretsAPI.put_acl`); every workspace user is in
  the built-in `users` group.
- "You must be a cluster owner to add or edit a secret in a Spark configuration property
  or environment variable." CAN_MANAGE is enough to *delete* one, and to change anything
  else. Admins are not exempted by the docs, so they are not here either.
- An owner who is a workspace admin resolves a reference without an entry of its own:
  Microsoft's "Workspace secret scopes" says "Workspace admins, secret creators, and users
  who have been granted permission can access and read Databricks secrets". No source says
  how a cluster start resolves for an admin owner, so this is that page's reading; the tool
  does not rely on it (provisioner/databricks/ownership.py still asks for an explicit READ).

Who the owner is: the cluster's creator, `creator_user_name` in `clusters/get`, until an
admin moves it with `POST /api/2.1/clusters/change-owner` ("You must be an admin and the
cluster must be terminated to perform this operation. The service principal application ID
can be supplied as an argument to `owner_username`": databricks-sdk-py `service/compute.py`
`ClustersAPI.change_owner`; the provider never calls it). `single_user_name` is the user a
dedicated (SINGLE_USER) cluster is assigned to — "by default the owner of the cluster"
(provider `docs/guides/unity-catalog.md`) — but the docs above name the *owner* as the
principal whose READ resolves the reference, so `single_user_name` neither needs nor
supplies READ here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State

SECRET_REF = re.compile(r"\{\{secrets/([^/{}]+)/([^/{}]+)\}\}")
USERS = "users"
ADMINS = "admins"  # store/identities.py ADMINS: the workspace admins group
_SECRET_FIELDS = ("spark_conf", "spark_env_vars")


def owner_names(state: State, owner: str) -> set[str]:
    """Every ACL principal that grants the owner something: itself, its groups, `users`."""
    for principal in state.get("identities", {}).get("principals", {}).values():
        if principal["userName"] == owner:
            return {owner, *principal.get("groups", []), USERS}
    return {owner, USERS}


def missing_read(acls: Mapping[str, str] | None, names: set[str]) -> bool:
    """No entry of the scope's ACL (READ < WRITE < MANAGE all include reading) names the owner."""
    return acls is not None and ADMINS not in names and not (names & set(acls))


def check_reference_edit(cluster: Mapping[str, Any], new_spec: Mapping[str, Any], caller: str) -> None:
    """403 when a non-owner's edit adds a secret reference or changes an existing one."""
    owner = str(cluster["creator_user_name"])
    if caller == owner:
        return
    old_spec = cluster["spec"]
    for field in _SECRET_FIELDS:
        old: Mapping[str, str] = old_spec.get(field) or {}
        for key, value in (new_spec.get(field) or {}).items():
            added = set(SECRET_REF.findall(value)) - set(SECRET_REF.findall(old.get(key, "")))
            if added:
                raise DatabricksError(
                    403,
                    "PERMISSION_DENIED",
                    f"User {caller} is not the owner of cluster {cluster['cluster_id']}. Only the cluster owner "
                    f"({owner}) can add or edit a secret reference in {field} ({key}).",
                )


def change_owner(cluster: dict[str, Any], new_owner: str) -> None:
    if not new_owner:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: owner_username")
    if cluster["state"] != "TERMINATED":
        raise DatabricksError(
            400,
            "INVALID_STATE",
            f"Cluster {cluster['cluster_id']} is in unexpected state {cluster['state'].capitalize()}: "
            "the cluster must be terminated to change its owner.",
        )
    cluster["creator_user_name"] = new_owner


def resolve_references(
    fields: Mapping[str, Mapping[str, str]], scopes: Mapping[str, Any], owner: str, names: set[str]
) -> tuple[dict[str, str], str | None]:
    """Spark conf with secret references replaced by today's values, or the first bad reference.

    References (in `spark_conf` and `spark_env_vars`) resolve with the permissions of the
    cluster's owner, who needs READ on the scope, directly or through a group (see above).
    """
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        scope = scopes.get(match.group(1), {})
        if missing_read(scope.get("acls"), names):
            missing.append(f"scope: {match.group(1)}: the cluster owner {owner} lacks READ on the scope")
            return match.group(0)
        secret = scope.get("secrets", {}).get(match.group(2))
        if secret is None:
            missing.append(f"scope: {match.group(1)} and key: {match.group(2)}")
            return match.group(0)
        return str(secret["value"])

    resolved = {k: SECRET_REF.sub(sub, v) for k, v in (fields.get("spark_conf") or {}).items()}
    for value in (fields.get("spark_env_vars") or {}).values():
        SECRET_REF.sub(sub, value)  # checked like the conf; the sandbox does not run what they feed
    return resolved, (missing[0] if missing else None)
