"""Before anything changes: can each managed cluster's owner read the SAS secret?

A `{{secrets/<scope>/<key>}}` reference in `spark_conf` resolves when the cluster starts,
with the permissions of the cluster's *owner*, who needs READ on the scope; only the owner
may add such a reference (docs.databricks.com security/secrets/secrets-spark-conf-env-var,
"Requirements"). A cluster whose owner cannot read the scope fails to start — after the
apply, or during a rotation's window. So `plan` and `apply` check first and name cluster,
principal, missing permission and the fix in one line.

The owner is the cluster's `creator_user_name`. READ counts when the scope's ACL grants the
owner or `users` READ or more, or `sas.readers` will grant it. A grant to another group may
include the owner, which only an admin could look up: then nothing is claimed. Listing a
scope's ACL needs MANAGE; without it the check is skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from provisioner.databricks.parallel import map_bounded
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config import Environment
    from provisioner.databricks.workspace import WorkspaceClient

USERS = "users"  # the group every workspace user is in


def check_owners_can_read(
    client: WorkspaceClient, env: Environment, cluster_ids: Mapping[str, str], warn: Callable[[str], None]
) -> None:
    """Raise ProvisionError (one line per cluster) when an owner lacks READ on the SAS scope."""
    if env.sas.mode != "secret_scope" or not cluster_ids:
        return
    scope = env.sas.secret_scope
    try:
        acls = client.scope_acls(scope)
    except WorkspaceError as exc:
        if exc.not_found:
            return  # created by this apply: its creator (and sas.readers) get access
        warn(f"{env.name}: cannot read the ACL of secret scope {scope} ({exc.message}): cluster owners not checked")
        return
    granted = {p for p in acls if p} | set(env.sas.readers)
    if USERS in granted:
        return
    outcomes = map_bounded(lambda item: (item[0], item[1], _owner(client, item[1])), sorted(cluster_ids.items()))
    problems = []
    for outcome in outcomes:
        if outcome.value is None:
            continue  # unreadable or gone: Terraform reports it
        name, cid, owner = outcome.value
        if not owner or owner in granted or _groups_unknown(granted, owner):
            continue
        problems.append(
            f"cluster {name} ({cid}): its owner {owner} lacks READ on secret scope {scope}, so the cluster cannot "
            f"resolve the SAS secret when it starts — add {owner} to sas.readers (or run "
            f"`databricks secrets put-acl {scope} {owner} READ`)"
        )
    if problems:
        raise ProvisionError(f"{env.name}: " + "; ".join(problems))


def _owner(client: WorkspaceClient, cluster_id: str) -> str | None:
    try:
        return str(client.get_cluster(cluster_id).get("creator_user_name") or "")
    except WorkspaceError:
        return None


def _groups_unknown(granted: set[str], owner: str) -> bool:
    """Some grant goes to a group (no `@`, not the owner's own id): the owner may be in it."""
    return any("@" not in p and p != owner for p in granted)
