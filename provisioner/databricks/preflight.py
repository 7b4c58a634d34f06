"""Before the point of no return: can this identity do what apply/rotate are about to need?

`apply` and `rotate` change things the run cannot take back (a refresh revokes the old SAS
token at once; an apply edits clusters). What they need from the workspace afterwards —
restart running clusters onto the new token, write the secret scope — is checked here
first, so a missing permission fails with nothing changed.

What is checked, and why that way:
- every managed cluster that still exists: CAN_MANAGE. Terraform edits these clusters and
  the tool restarts them; reading a cluster's ACL itself needs CAN_MANAGE, so a successful
  read is the proof, and a PERMISSION_DENIED names the missing level.
- the secret scope (secret_scope mode, when it exists): WRITE. The ACL API answers only to
  MANAGE (which includes WRITE); when it is denied WRITE may still be there, so that case is
  a warning, not a refusal.
Workspace admins pass both (the `admins` group can do everything).
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
    if "admins" in identity.groups:
        return
    who = identity.principal
    for name, cluster_id in sorted(cluster_ids.items()):
        try:
            client.cluster_permission_levels(cluster_id)
        except WorkspaceError as exc:
            if exc.not_found:
                continue  # gone: Terraform creates it anew
            if not exc.permission_denied:
                raise ProvisionError(f"{env.name}: cannot check permissions on cluster {name}: {exc.message}") from None
            raise ProvisionError(
                f"{env.name}: {who} lacks CAN_MANAGE on cluster {name} ({cluster_id}), needed to apply changes and "
                "restart it onto a new SAS token — grant it in the workspace (Compute → the cluster → Permissions) "
                "or with databricks_permissions; nothing was changed"
            ) from None
    if env.sas.mode != "secret_scope":
        return
    scope = env.sas.secret_scope
    try:
        client.scope_acls(scope)  # answers only to MANAGE, which includes WRITE
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
