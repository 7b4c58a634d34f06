"""Read many managed clusters at once, in as few round trips as the workspace allows.

`clusters/get` does not say whether a cluster is pinned; the pinned list does
(provisioner/databricks/pinning.py), and it carries each pinned cluster whole (`ClusterDetails`, as
get answers it) in one page of 100 — the workspace's pin limit, the page size the real
provider asks for (`clusters/resource_cluster.go` `setPinnedStatus`). Managed clusters are
pinned unless the config opts out, so one call usually reads them all; a get is made only
for a cluster that list does not hold, those known to be unpinned beside the list call.

Past the pin limit a large environment has more unpinned clusters than one wave of gets
(`databricks.max_parallel`): 100 unpinned clusters at 20 calls in flight are five round
trips. The listing of the unpinned clusters (`filter_by.is_pinned` false) carries 100 a page
(the Clusters API 2.1's largest page), beside the pinned list: at 200 clusters both lists
answer in one round trip. It lists every unpinned cluster the identity can see, ours or
not, so it stops once it has shown ours and after as many pages as the gets would have
taken waves; what it has not shown is read with gets, as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.databricks.parallel import DEFAULT_MAX_PARALLEL
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError, translated

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
        first: dict[str, Future[dict[str, Any] | WorkspaceError]] = {}
        if len(early) > bound:  # more than one wave of gets: 100 a page instead
            shown = pool.submit(list_unpinned, client, early, pages=math.ceil(len(early) / bound)).result()
            for cid, info in shown.items():
                first[cid] = Future()
                first[cid].set_result(info)
        first.update({cid: pool.submit(get, cid) for cid in early if cid not in first})
        pinned = {str(c.get("cluster_id")): c for c in listed.result()}
        rest = {cid: pool.submit(get, cid) for cid in wanted if cid not in pinned and cid not in first}
        clusters = {cid: f.result() for cid, f in {**first, **rest}.items()}
    clusters.update({cid: pinned[cid] for cid in wanted if cid in pinned and cid not in clusters})
    return ClusterReads(clusters, frozenset(pinned))


# The Clusters API 2.1 serves at most 100 a page; the real provider asks as many (`setPinnedStatus`).
LIST_PAGE_SIZE = 100


def list_unpinned(client: WorkspaceClient, cluster_ids: Iterable[str], *, pages: int) -> dict[str, dict[str, Any]]:
    """Those of `cluster_ids` the unpinned clusters' listing shows, read at most `pages` pages
    deep and no further than the last of them; {} when the listing fails (the caller gets them)."""
    from databricks.sdk.service.compute import ListClustersFilterBy

    wanted = set(cluster_ids)
    shown: dict[str, dict[str, Any]] = {}
    try:
        with translated("GET /api/2.1/clusters/list"):
            # The SDK's iterator asks for the next page only when this loop has read the last one.
            listing = client.sdk.clusters.list(
                filter_by=ListClustersFilterBy(is_pinned=False), page_size=LIST_PAGE_SIZE
            )
            for seen, details in enumerate(listing, start=1):
                cid = str(details.cluster_id)
                if cid in wanted:
                    shown[cid] = details.as_dict()
                if len(shown) == len(wanted) or seen >= pages * LIST_PAGE_SIZE:
                    break
    except WorkspaceError:
        return shown
    return shown
