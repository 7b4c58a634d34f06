"""Read many managed clusters at once, in as few round trips as the workspace allows.

`clusters/get` does not say whether a cluster is pinned; the pinned list does
(provisioner/databricks/pinning.py), and it carries each pinned cluster whole (`ClusterDetails`, as
get answers it) in one page of 100 — the workspace's pin limit, the page size the real
provider asks for (`clusters/resource_cluster.go` `setPinnedStatus`). Managed clusters are
pinned unless the config opts out, so one call usually reads them all; a get is made only
for a cluster that list does not hold, those known to be unpinned beside the list call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.databricks.parallel import DEFAULT_MAX_PARALLEL
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError

if TYPE_CHECKING:
    from provisioner.config.model import Environment


@dataclass(frozen=True)
class ClusterReads:
    clusters: dict[str, dict[str, Any] | WorkspaceError]  # cluster id -> its details, or why not
    pinned: frozenset[str]  # ids of the workspace's pinned clusters


def read_clusters(
    client: WorkspaceClient,
    env: Environment,
    cluster_ids: Mapping[str, str],
    *,
    beside: int = 0,
) -> ClusterReads:
    """Each managed cluster's details (or the `WorkspaceError` its get raised: the caller
    judges gone vs unreadable), by cluster id. The clusters the config leaves unpinned are
    read beside the pinned list, not after it; calls in flight stay within
    `databricks.max_parallel`, less `beside` calls the caller makes meanwhile."""
    bound = max(1, (env.databricks_max_parallel or DEFAULT_MAX_PARALLEL) - beside)
    unpinned = [cluster_ids[c.name] for c in env.clusters if c.is_pinned is False and c.name in cluster_ids]
    return _read(client, cluster_ids.values(), unpinned, bound)


def _read(client: WorkspaceClient, cluster_ids: Iterable[str], unpinned: Iterable[str], bound: int) -> ClusterReads:
    wanted = sorted(set(cluster_ids))
    if not wanted:
        return ClusterReads({}, frozenset())
    early = sorted(set(unpinned) & set(wanted))

    def get(cid: str) -> dict[str, Any] | WorkspaceError:
        try:
            return client.get_cluster(cid)
        except WorkspaceError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=bound, thread_name_prefix="read") as pool:
        listed = pool.submit(client.list_clusters, pinned_only=True)
        first = {cid: pool.submit(get, cid) for cid in early}
        pinned = {str(c.get("cluster_id")): c for c in listed.result()}
        rest = {cid: pool.submit(get, cid) for cid in wanted if cid not in pinned and cid not in first}
        clusters = {cid: f.result() for cid, f in {**first, **rest}.items()}
    clusters.update({cid: pinned[cid] for cid in wanted if cid in pinned and cid not in clusters})
    return ClusterReads(clusters, frozenset(pinned))
