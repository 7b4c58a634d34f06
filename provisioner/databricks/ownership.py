"""Before anything changes: may this run add the SAS secret reference, and can each owner read it?

Databricks, "Use a secret in a Spark configuration property or environment variable"
(docs.databricks.com/security/secrets/secrets-spark-conf-env-var, "Requirements"):
"Cluster owners must have CAN READ permission on the secret scope" — a
`{{secrets/<scope>/<key>}}` reference resolves when the cluster starts, with the owner's
permissions — and "You must be a cluster owner to add or edit a secret in a Spark
configuration property". So in `secret_scope` mode, for every managed or adopted cluster:

1. Its owner is `creator_user_name` (an admin can move it: `clusters/change-owner`, only
   while the cluster is terminated; databricks-sdk-py `service/compute.py`). If its
   spark_conf does not hold the reference yet, the apply's `clusters/edit` adds it, which
   the workspace refuses (403) unless this run's identity is the owner. Clusters the tool
   creates are owned by that identity.
2. The owner needs READ on the scope. `single_user_name` (a dedicated cluster's assigned
   user) is not the principal the docs name, so it is not the one checked. READ counts when
   the scope's ACL grants it (or more) to the owner, to `users` (every workspace user), to a
   group the owner is in, or `sas.readers` will grant it.

Group membership: SCIM lists another principal's `groups` to workspace admins only
(docs.databricks.com/dev-tools/api/latest/scim/index.html: non-admins see names and ids);
`Me` gives this run's own groups. When a group grant may cover an owner whose groups
cannot be read, the check warns instead of failing. Listing a scope's ACL needs MANAGE;
without it the READ check is skipped with a warning.

Owners who are workspace admins: Microsoft's "Workspace secret scopes" says admins "can access
and read Databricks secrets", but no source says a cluster owned by one resolves a reference
without a READ of its own. The product is safe either way: an admin owner without an explicit
READ is refused like any other, and the line says why and that `sas.readers` settles it (an
ACL entry resolves whatever the rule for admins is).

One line per environment names cluster, owner, principal, the missing right and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from provisioner.databricks.cluster_reads import read_clusters
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.identity import Identity
    from provisioner.databricks.workspace import WorkspaceClient

USERS = "users"  # the group every workspace user is in
ADMINS = "admins"


def check_owners_can_read(
    client: WorkspaceClient,
    env: Environment,
    cluster_ids: Mapping[str, str],
    warn: Callable[[str], None],
    identity: Callable[[], Identity],
    known: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Raise ProvisionError (one line) when a cluster's owner is not this run's identity and
    the reference would be added, or when an owner lacks READ on the SAS scope.

    `identity` is asked for once the clusters are read: a caller whose proof of it is still
    under way (plan's early checks) overlaps the two. `known`: cluster id -> `clusters/get`
    details the caller has read already."""
    if env.sas.secret is None or not cluster_ids:  # no secret to resolve
        return
    details = dict(known) if known is not None else _read(client, env, cluster_ids)
    me = identity()
    problems: list[str] = []
    to_read: list[tuple[str, str, str]] = []
    for name, cid in sorted(cluster_ids.items()):
        info = details.get(cid)
        if info is None:
            continue  # unreadable or gone: Terraform (or the caller) reports it
        owner = str(info.get("creator_user_name") or "")
        if not owner:
            continue  # the field is absent once the owner is deleted: nothing to name
        if owner != me.user_name and not _holds(info, env.sas.secret_reference):
            problems.append(_not_owner(name, cid, owner, me))
        else:
            to_read.append((name, cid, owner))
    problems += _read_problems(client, env, to_read, warn, me)
    if problems:
        raise ProvisionError(f"{env.name}: " + "; ".join(problems))


def _read(client: WorkspaceClient, env: Environment, cluster_ids: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
    """The clusters' details in as few calls as the workspace allows (pinned list, then gets)."""
    reads = read_clusters(client, env, cluster_ids)
    return {cid: info for cid, info in reads.clusters.items() if not isinstance(info, WorkspaceError)}


def _holds(info: Mapping[str, Any], reference: str) -> bool:
    """The cluster's spark_conf already holds the reference: the apply leaves it as it is.

    Any key counts. The tool's key moves only with the DLZ's container or account; a
    non-owner's apply would then add the reference at the new key, which the workspace
    refuses, and this check does not foresee."""
    return any(reference in str(value) for value in (info.get("spark_conf") or {}).values())


def _not_owner(name: str, cid: str, owner: str, identity: Identity) -> str:
    me = identity.user_name
    return (
        f"cluster {name} ({cid}) is owned by {owner}, not by {me} (this run): only a cluster's owner may add the "
        f"secret reference to its spark_conf, so the workspace would refuse the edit — a workspace admin can make "
        f"{me} its owner while it is terminated (`databricks clusters change-owner {cid} {me}`), or use "
        "sas.mode: inline"
    )


def _read_problems(
    client: WorkspaceClient,
    env: Environment,
    clusters: list[tuple[str, str, str]],
    warn: Callable[[str], None],
    identity: Identity,
) -> list[str]:
    if not clusters:
        return []
    scope = env.sas.secret_scope
    try:
        acls = client.scope_acls(scope)
    except WorkspaceError as exc:
        if exc.not_found:
            return []  # created by this apply: its creator (this run) and sas.readers get access
        warn(f"{env.name}: cannot read the ACL of secret scope {scope} ({exc.message}): cluster owners not checked")
        return []
    granted = {p for p in acls if p} | set(env.sas.readers)
    if USERS in granted:
        return []
    groups = {p for p in granted if _may_be_group(p)}
    problems = []
    for name, cid, owner in clusters:
        if owner in granted:
            continue
        # Read even without group grants: an admin owner gets a line of its own (module docstring).
        member_of = _groups_of(client, owner, identity)
        if member_of is None and not groups:
            member_of = ()
        if member_of is None:
            warn(
                f"{env.name}: cluster {name}: cannot read the groups of its owner {owner} (SCIM shows them to "
                f"workspace admins only): READ through {', '.join(sorted(groups))} on secret scope {scope} not checked"
            )
            continue
        if groups & set(member_of):
            continue
        if ADMINS in member_of:
            problems.append(
                f"cluster {name} ({cid}): its owner {owner} is a workspace admin without an explicit READ on secret "
                f"scope {scope}; Databricks documents that admins can read secrets, not that a cluster an admin owns "
                f"resolves one at start — add {owner} to sas.readers (or run `databricks secrets put-acl {scope} "
                f"{owner} READ`) so it does either way"
            )
            continue
        problems.append(
            f"cluster {name} ({cid}): its owner {owner} lacks READ on secret scope {scope}, so the cluster cannot "
            f"resolve the SAS secret when it starts — add {owner} to sas.readers (or run "
            f"`databricks secrets put-acl {scope} {owner} READ`)"
        )
    return problems


def _may_be_group(principal: str) -> bool:
    """ACL principals are e-mails (users), application ids (service principals) or group names."""
    return "@" not in principal and not _is_uuid(principal)


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(c in "0123456789abcdefABCDEF" for c in "".join(parts))


def _groups_of(client: WorkspaceClient, owner: str, identity: Identity) -> tuple[str, ...] | None:
    """The owner's groups, or None when this run may not read them."""
    if owner == identity.user_name:
        return identity.groups  # SCIM Me: every caller sees its own groups
    admin = ADMINS in identity.groups
    try:
        found = client.principal_groups(owner)
    except WorkspaceError:
        return None
    if found is None:
        return () if admin else None  # an admin's answer omits an empty list
    return found
