"""Before the point of no return: can this identity do what apply/rotate are about to need?

`apply` and `rotate` change things the run cannot take back (a refresh revokes the old SAS
token at once; an apply edits clusters). What they need from the workspace afterwards —
restart running clusters onto the new token, write the secret scope — is checked here
first, so a missing permission fails with nothing changed.

What is checked, and why that way:
- every managed cluster that still exists: CAN_MANAGE. Terraform edits these clusters and
  the tool restarts them. The cluster's ACL (`GET /api/2.0/permissions/clusters/{id}`, SDK
  `PermissionsAPI.get`) is read and the identity's level taken from it — the entries for its
  user or application id, the groups SCIM `Me` lists for it, and `users` — so the check holds
  whoever may read an ACL (the Permissions API reference does not say; a refused read is
  taken as "not a manager", the level the workspace UI shows the dialog to).
- the secret scope (secret_scope mode, when it exists): WRITE. Its ACL is read the same way
  (`secrets/acls/list`); the ACL API answers only to MANAGE ("Secret ACL" reference), which
  includes WRITE, and when it is denied WRITE may still be there, so that case is a warning.
Workspace admins pass both (the `admins` group can do everything). Groups nested in groups
are not expanded (`Me` lists direct memberships): a level held only through a nested group
reads as missing, which refuses a run that might have worked rather than letting one fail
half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from provisioner.config.model import Environment
from provisioner.databricks.identity import Identity
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
from provisioner.errors import ProvisionError


def check_access(
    client: WorkspaceClient,
    identity: Identity,
    env: Environment,
    cluster_ids: Mapping[str, str],
    warn: Callable[[str], None],
) -> None:
    """Raise ProvisionError (one line: principal, permission, fix) when a need is not met."""
    if identity.is_admin:
        return
    who = identity.principal
    names = {identity.user_name, *identity.groups, "users"}
    for name, cluster_id in sorted(cluster_ids.items()):
        try:
            acl = client.cluster_permission_levels(cluster_id)
        except WorkspaceError as exc:
            if exc.not_found:
                continue  # gone: Terraform creates it anew
            if not exc.permission_denied:
                raise ProvisionError(f"{env.name}: cannot check permissions on cluster {name}: {exc.message}") from None
            acl = {}
        have = _best(CLUSTER_LEVELS, acl, names)
        if have != "CAN_MANAGE":
            held = f" (it has {have})" if have else ""
            raise ProvisionError(
                f"{env.name}: {who} lacks CAN_MANAGE on cluster {name} ({cluster_id}){held}, needed to apply changes "
                "and restart it onto a new SAS token — grant it in the workspace (Compute → the cluster → "
                "Permissions) or with databricks_permissions; nothing was changed"
            )
    if env.sas.secret is None:  # no scope to write
        return
    scope = env.sas.secret_scope
    try:
        scope_acl = client.scope_acls(scope)
    except WorkspaceError as exc:
        if exc.not_found:
            return  # Terraform creates it; the creator gets MANAGE
        if not exc.permission_denied:
            raise ProvisionError(f"{env.name}: cannot check the ACL of secret scope {scope}: {exc.message}") from None
        warn(
            f"{env.name}: {who} cannot read the ACL of secret scope {scope} (that needs MANAGE): if it lacks "
            f"WRITE too, writing the SAS token will fail — `databricks secrets put-acl {scope} "
            f"{identity.user_name} WRITE` grants it"
        )
        return
    if _best(SCOPE_LEVELS, scope_acl, names) not in ("WRITE", "MANAGE"):
        raise ProvisionError(
            f"{env.name}: {who} lacks WRITE on secret scope {scope}, needed to write the SAS token — "
            f"`databricks secrets put-acl {scope} {identity.user_name} WRITE` grants it; nothing was changed"
        )


CLUSTER_LEVELS = ("CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE")
SCOPE_LEVELS = ("READ", "WRITE", "MANAGE")


def _best(levels: tuple[str, ...], acl: Mapping[str, str], names: set[str]) -> str | None:
    """The highest of `levels` any of `names` holds in `acl` (name → level)."""
    held = [levels.index(level) for name, level in acl.items() if name in names and level in levels]
    return levels[max(held)] if held else None
