"""Pinning, the 100-pin limit and the 30-day purge, as the tool sees them.

Databricks deletes an all-purpose cluster for good 30 days after it terminated unless it is
pinned, and a workspace pins at most 100 clusters (SDK `service/compute.py`). After the purge
`clusters/get` answers 400 `INVALID_STATE` "Cannot access cluster … that was terminated or
unpinned more than 30 days ago." (provider issues #1177/#1197; PR #1178 treats it as removed).
So managed clusters are pinned unless the config says `is_pinned: false`; the pin limit is
checked before a plan that would pin more; `status` warns 10 days before the purge.

Pinning is admin-only ("This API can only be called by workspace admins", SDK
`ClustersAPI.pin`; provider `docs/resources/cluster.md`: "You must be a Databricks
administrator to use this"), and the provider pins right after `clusters/create`, returning
the pin's error with the id already set (`clusters/resource_cluster.go`, create): Terraform
keeps a tainted cluster and replaces it at every apply. So `resolve_pins` decides before
rendering: a cluster the config leaves unset is pinned when the run's identity is a
workspace admin; for anyone else it is rendered `is_pinned = false` — unless it is pinned
already (an admin pinned it), where `true` keeps it so without a call — and the run says
once what that means. `is_pinned: true` in the config of a non-admin run is refused before
anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provisioner.databricks.cluster_state import cluster_gone
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.identity import Identity
    from provisioner.databricks.workspace import WorkspaceClient

MAX_PINNED = 100
PURGE_DAYS = 30
WARN_DAYS = 20
_DAY_MS = 24 * 3600 * 1000


def cluster_missing(client: WorkspaceClient, cluster_id: str) -> bool:
    """The cluster no longer exists (deleted, or purged by Databricks)."""

    try:
        client.get_cluster(cluster_id)
    except WorkspaceError as exc:
        if cluster_gone(exc):
            return True
        raise ProvisionError(f"cannot read cluster {cluster_id} ({exc.message})") from None
    return False


def check_pin_limit(client: WorkspaceClient, env: Environment) -> None:
    """Fail before Terraform when pinning this environment's clusters would pass the workspace's limit.

    A configured cluster counts as already pinned when a pinned cluster of the same name exists,
    so re-planning an applied environment never counts its clusters twice.
    """
    wanted = [c for c in env.clusters if c.is_pinned is not False]
    if not wanted:
        return
    pinned = client.list_clusters(pinned_only=True)
    pinned_names = {str(c.get("cluster_name")) for c in pinned}
    missing = [c for c in wanted if c.cluster_name not in pinned_names]
    if missing and len(pinned) + len(missing) > MAX_PINNED:
        names = ", ".join(c.name for c in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ProvisionError(
            f"{env.name}: the workspace has {len(pinned)} pinned clusters and pinning {len(missing)} more ({names}) "
            f"would pass Databricks' limit of {MAX_PINNED} — unpin clusters you no longer need, or set "
            "is_pinned: false on these (unpinned clusters are deleted 30 days after they terminate)"
        )


def resolve_pins(
    client: WorkspaceClient, identity: Identity, env: Environment, warn: Callable[[str], None] | None = None
) -> Environment:
    """The environment with every cluster's `is_pinned` decided for this identity (see the module)."""
    import dataclasses

    unset = [c for c in env.clusters if c.is_pinned is None]
    if identity.is_admin:
        if not unset:
            return env
        return dataclasses.replace(
            env,
            clusters=tuple(dataclasses.replace(c, is_pinned=True) if c.is_pinned is None else c for c in env.clusters),
        )
    asked = [c.name for c in env.clusters if c.is_pinned is True]
    if asked:
        raise ProvisionError(
            f"clusters.{asked[0]}.is_pinned: true needs a workspace admin (Databricks lets only admins pin a "
            f"cluster) and {identity.principal} is not one — remove is_pinned (the clusters stay unpinned), "
            "or run as a workspace admin"
        )
    if not unset:
        return env
    pinned_names = {str(c.get("cluster_name")) for c in client.list_clusters(pinned_only=True)}
    clusters = tuple(
        dataclasses.replace(c, is_pinned=c.cluster_name in pinned_names) if c.is_pinned is None else c
        for c in env.clusters
    )
    left = [
        c.name for c, before in zip(clusters, env.clusters, strict=True) if before.is_pinned is None and not c.is_pinned
    ]
    if left and warn is not None:
        warn(
            f"{env.name}: not pinning {', '.join(left)}: {identity.principal} is not a workspace admin and only "
            f"admins may pin — Databricks deletes an unpinned cluster {PURGE_DAYS} days after it terminates "
            "(status warns 10 days ahead); ask an admin to pin it, or set is_pinned: false to silence this"
        )
    return dataclasses.replace(env, clusters=clusters)


def purge_warning(info: dict[str, Any], pinned: bool, now_ms: int) -> str | None:
    """A line for an unpinned cluster that has been terminated for more than 20 days.

    `pinned` comes from `clusters/list` (`filter_by.is_pinned`): `clusters/get` does not say.
    """
    if pinned or info.get("state") != "TERMINATED" or not info.get("terminated_time"):
        return None
    days = (now_ms - int(info["terminated_time"])) // _DAY_MS
    if days <= WARN_DAYS:
        return None
    left = max(0, PURGE_DAYS - days)
    return (
        f"unpinned and terminated {days} days ago: Databricks deletes it for good in {left} day(s) — "
        "remove `is_pinned: false` (and apply) or start it"
    )


def without_gone_imports(client: WorkspaceClient, env: Environment, warn: Callable[[str], None]) -> Environment:
    """The environment minus `import_id`s whose cluster no longer exists (deleted or purged).

    Terraform would try to import the missing cluster and fail the whole plan; without the
    import block the cluster is simply created (and its AEP connection repointed after the apply).
    """
    import dataclasses

    clusters = []
    for cluster in env.clusters:
        if cluster.import_id is not None and cluster_missing(client, cluster.import_id):
            warn(
                f"clusters.{cluster.name}.import_id: cluster {cluster.import_id} no longer exists, so it is not "
                "imported (it is created instead) — remove import_id from provision.yaml"
            )
            cluster = dataclasses.replace(cluster, import_id=None)
        clusters.append(cluster)
    return dataclasses.replace(env, clusters=tuple(clusters))
