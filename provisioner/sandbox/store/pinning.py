"""Pinning and the 30-day purge of terminated clusters.

- Databricks keeps a terminated all-purpose cluster's configuration for 30 days, then deletes
  it permanently unless it is pinned (SDK `service/compute.py`: clusters/list returns "all
  pinned and active clusters, and all clusters terminated within the last 30 days"; pinning
  "ensures that the cluster will always be returned"; at most 100 clusters can be pinned per
  workspace). No source the project can read shows the refusal past the limit: it is answered
  with a code the SDK knows (`errors/platform.py`: 400 `INVALID_PARAMETER_VALUE`), and neither
  the tool (which checks the limit before Terraform, provisioner/databricks/pinning.py) nor the
  stand-in provider depends on its code or wording.
- Pinning is admin-only ("This API can only be called by workspace admins", SDK
  `ClustersAPI.pin`/`unpin`; provider `docs/resources/cluster.md` "You must be a Databricks
  administrator to use this"): a non-admin gets 403 `PERMISSION_DENIED`
  (provisioner/sandbox/workspace_permissions.py).
- Afterwards `clusters/get` answers 400 `INVALID_STATE` "Cannot access cluster <id> that was
  terminated or unpinned more than 30 days ago." (provider issues #1177 and #1197, which show
  the exact body; PR #1178 makes the provider treat it as "removed").
- `age_cluster` is the time-travel knob: it moves a cluster's `terminated_time` into the past;
  the purge itself happens lazily, like every other transition, whenever the state is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State, StoreBase, workspace_state
from provisioner.sandbox.store.records import due_clusters

PURGE_AFTER_DAYS = 30
MAX_PINNED = 100
_DAY_MS = 24 * 3600 * 1000


def purged_error(cluster_id: str) -> DatabricksError:
    # The body issue #1197 shows (provider 0.5.3 debug output).
    return DatabricksError(
        400,
        "INVALID_STATE",
        f"Cannot access cluster {cluster_id} that was terminated or unpinned more than {PURGE_AFTER_DAYS} days ago.",
    )


def purge_at(cluster: Mapping[str, Any]) -> float | None:
    """When (epoch seconds) this cluster is purged if nothing changes: unpinned and TERMINATED only."""
    terminated = cluster.get("terminated_time")
    if cluster.get("is_pinned") or cluster.get("state") != "TERMINATED" or terminated is None:
        return None
    return (int(terminated) + PURGE_AFTER_DAYS * _DAY_MS) / 1000


def purge_due(state: State, now_ms: int) -> None:
    """Unpinned clusters terminated more than 30 days ago become tombstones (`ws["purged"]`)."""
    for ws in state["workspaces"].values():
        for cluster_id, cluster in due_clusters(ws, now_ms / 1000):
            terminated = cluster.get("terminated_time")
            if cluster.get("is_pinned") or cluster.get("state") != "TERMINATED" or terminated is None:
                continue
            if now_ms - int(terminated) > PURGE_AFTER_DAYS * _DAY_MS:
                del ws["clusters"][cluster_id]
                ws.setdefault("purged", []).append(cluster_id)


def check_pin_limit(ws: dict[str, Any], cluster_id: str) -> None:
    """Refuse the pin that would pass the workspace's limit (a re-pin is free)."""
    cluster = ws["clusters"].get(cluster_id) or {}
    count = sum(1 for c in ws["clusters"].values() if c.get("is_pinned"))
    if not cluster.get("is_pinned") and count >= MAX_PINNED:
        raise DatabricksError(
            400,
            "INVALID_PARAMETER_VALUE",
            f"Cannot pin cluster {cluster_id}: the workspace already has {count} pinned clusters "
            f"(the limit is {MAX_PINNED}).",
        )


class PinStore(StoreBase):
    def age_cluster(self, workspace_key: str, cluster_id: str, days: float) -> None:
        """Time travel: the (TERMINATED) cluster was terminated `days` earlier than it says;
        past 30 days an unpinned one is purged at the next read, as Databricks would."""
        with self._txn() as state:
            cluster = workspace_state(state, workspace_key)["clusters"].get(cluster_id)
            if cluster is None or cluster.get("state") != "TERMINATED":
                raise ValueError(f"cluster {cluster_id} is not a TERMINATED cluster of {workspace_key}")
            cluster["terminated_time"] = int(cluster["terminated_time"]) - int(days * _DAY_MS)
