"""The tags on every cluster the tool creates, and the clusters they find that the state lost.

A create the workspace carried out but Terraform never recorded (the run was killed between
`clusters/create` and the state write, or the answer was lost) leaves a cluster no state
names: the next apply would create a second one, and nothing would ever name the first. So
each created cluster carries `custom_tags` naming the tool, its environment and its name in
provision.yaml; `clusters/list` answers every cluster's `custom_tags` (ClusterDetails), so
one call finds a tagged cluster the state does not know — a stray.

Databricks propagates custom tags to the cloud resources (VMs, disks) as they are; Azure
refuses tag names with `<>%&\\?/`, so the keys use letters and `-` only. The provider's
`custom_tags` is a plain map sent as configured (terraform-provider-databricks
`clusters/resource_cluster.go`, `clusters_api.go` `CustomTags`); the workspace's own tags
(Vendor, Creator, ClusterName, ClusterId) live in `default_tags` and never show as a diff.
Adopted clusters (`import_id`) existed before the tool and are not tagged: their config is
what they were, and a tag would be one more change on adoption.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ENVIRONMENT_TAG = "dlz-provisioner-environment"
CLUSTER_TAG = "dlz-provisioner-cluster"
MANAGED_TAGS = (ENVIRONMENT_TAG, CLUSTER_TAG)


def managed_tags(environment: str, name: str) -> dict[str, str]:
    """The tags naming the tool (the keys), the environment and the cluster's name in provision.yaml."""
    return {ENVIRONMENT_TAG: environment, CLUSTER_TAG: name}


@dataclass(frozen=True)
class Stray:
    """A cluster carrying an environment's tags that its Terraform state does not know."""

    name: str  # its name in provision.yaml (the tag)
    cluster_id: str
    cluster_name: str
    state: str
    created_ms: int  # start_time: the newest of two strays of one name is the one to keep

    def describe(self) -> str:
        return f"cluster {self.cluster_name} ({self.cluster_id}, {self.state})"


def find_strays(listed: Iterable[Mapping[str, Any]], environment: str, managed_ids: Iterable[str]) -> list[Stray]:
    """The clusters of `listed` (a `clusters/list` answer) tagged for `environment` whose id is
    not in `managed_ids` (the state's), oldest first."""
    known = set(managed_ids)
    out = []
    for cluster in listed:
        tags = cluster.get("custom_tags") or {}
        cluster_id = str(cluster.get("cluster_id") or "")
        if tags.get(ENVIRONMENT_TAG) != environment or not tags.get(CLUSTER_TAG) or cluster_id in known:
            continue
        if cluster.get("state") == "DELETED" or not cluster_id:
            continue
        out.append(
            Stray(
                name=str(tags[CLUSTER_TAG]),
                cluster_id=cluster_id,
                cluster_name=str(cluster.get("cluster_name") or ""),
                state=str(cluster.get("state") or "UNKNOWN"),
                created_ms=int(cluster.get("start_time") or 0),
            )
        )
    return sorted(out, key=lambda s: (s.created_ms, s.cluster_id))


def importable(strays: Iterable[Stray], configured: Iterable[str], in_state: Iterable[str]) -> dict[str, Stray]:
    """Per configured name the state lacks, the stray to import: the newest (an older one of the
    same name is a duplicate already, and is named, not adopted)."""
    wanted = set(configured) - set(in_state)
    out: dict[str, Stray] = {}
    for stray in strays:  # oldest first: the newest wins
        if stray.name in wanted:
            out[stray.name] = stray
    return out
