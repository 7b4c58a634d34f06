"""Pinning, the 100-pin limit and the 30-day purge, as the tool sees them.

Databricks deletes an all-purpose cluster for good 30 days after it terminated unless it is
pinned, and a workspace pins at most 100 clusters (SDK `service/compute.py`). After the purge
`clusters/get` answers 400 `INVALID_STATE` "Cannot access cluster … that was terminated or
unpinned more than 30 days ago." (provider issues #1177/#1197; PR #1178 treats it as removed).
So managed clusters are pinned unless the config says `is_pinned: false`; the pin limit is
checked before a plan that would pin more; `status` warns 10 days before the purge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.workspace import WorkspaceClient

MAX_PINNED = 100
PURGE_DAYS = 30
WARN_DAYS = 20
_DAY_MS = 24 * 3600 * 1000


def cluster_missing(client: WorkspaceClient, cluster_id: str) -> bool:
    """The cluster no longer exists (deleted, or purged by Databricks)."""
    from provisioner.databricks.cluster_state import cluster_gone
    from provisioner.databricks.workspace import WorkspaceError

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


def purge_warning(info: dict[str, Any], pinned: bool, now_ms: int | None = None) -> str | None:
    """A line for an unpinned cluster that has been terminated for more than 20 days.

    `pinned` comes from `clusters/list` (`filter_by.is_pinned`): `clusters/get` does not say.
    """
    if pinned or info.get("state") != "TERMINATED" or not info.get("terminated_time"):
        return None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
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
