"""What the Clusters API requires of a cluster spec beyond its field types — checked at config time.

The JSON Schema says which fields and values exist; these rules say which combinations the
API (and the provider's own `Validate()`) accept, so a bad combination is one line naming the
key instead of a failure in the middle of an apply.

Sources:
- `kind`-only access modes: databricks-sdk-py `service/compute.py` `DataSecurityMode` ("The
  following modes can only be used when `kind = CLASSIC_PREVIEW`: DATA_SECURITY_MODE_AUTO,
  DATA_SECURITY_MODE_STANDARD (alias for USER_ISOLATION), DATA_SECURITY_MODE_DEDICATED (alias
  for SINGLE_USER)"); `is_single_node` and `use_ml_runtime` likewise only with `kind`.
- dedicated needs a user: provider `docs/resources/cluster.md` ("`single_user_name` … is
  required when using `data_security_mode` set to `SINGLE_USER`"); when it is left out the
  workspace fills in the creator and the provider then shows `single_user_name -> null` on
  every plan (databricks/cli#4418; cli `libs/testserver/clusters.go` models the same).
- `num_workers = 0`: provider `clusters/resource_cluster.go` `Validate()` — "NumWorkers could
  be 0 only for SingleNode clusters" unless spark_conf `spark.databricks.cluster.profile =
  singleNode`, `spark.master = local[*]` and custom_tags `ResourceClass = SingleNode`; with
  `kind = CLASSIC_PREVIEW`, `is_single_node = true` says the same.
- standard access mode (`USER_ISOLATION`, `DATA_SECURITY_MODE_STANDARD`): "DBUtils and other
  clients can only read from cloud storage using an external location" (Microsoft Learn,
  "Standard compute requirements and limitations",
  https://learn.microsoft.com/azure/databricks/compute/standard-limitations), so the cluster's
  `fs.azure.sas.*` entry — the whole point of a cluster AEP writes to — is not used.
- `DATA_SECURITY_MODE_AUTO`: "Databricks will choose the most appropriate access mode depending
  on your compute configuration" (SDK `DataSecurityMode`); "Auto defaults to Standard unless a
  machine learning runtime, a GPU instance type, or a Databricks Runtime lower than 14.3 is
  selected, in which case Dedicated is used" (Microsoft Learn, "Dedicated compute overview",
  https://learn.microsoft.com/azure/databricks/compute/dedicated-overview). Standard breaks the
  SAS (above), and which one a cluster gets is the workspace's choice, not provision.yaml's.
  What a live cluster's mode means for the run's principal (dedicated to someone else) is
  judged in provisioner/databricks/access_mode.py, which uses these sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KIND = "CLASSIC_PREVIEW"
DEDICATED_MODES = frozenset({"SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED"})
STANDARD_MODES = frozenset({"USER_ISOLATION", "DATA_SECURITY_MODE_STANDARD"})
AUTO_MODE = "DATA_SECURITY_MODE_AUTO"
KIND_ONLY_MODES = frozenset({AUTO_MODE, "DATA_SECURITY_MODE_STANDARD", "DATA_SECURITY_MODE_DEDICATED"})
# Why each kind of mode cannot use the Spark-config SAS (sources in the module docstring).
STANDARD_REASON = (
    "standard access mode reads cloud storage only through Unity Catalog external locations, so the "
    "cluster's fs.azure.sas.* entry is not used"
)
AUTO_REASON = (
    "DATA_SECURITY_MODE_AUTO lets Databricks choose, and it chooses standard access mode unless an ML runtime, a "
    "GPU node type or a runtime below 14.3 is selected — standard reads cloud storage only through Unity Catalog "
    "external locations, so the cluster's fs.azure.sas.* entry is not used"
)
DEDICATED_FIX = "use DATA_SECURITY_MODE_DEDICATED (or SINGLE_USER) with single_user_name"


def cluster_problem(cluster: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key, what is wrong — the fix) for the first rule the cluster breaks, or None."""
    kind = cluster.get("kind")
    mode = cluster.get("data_security_mode")
    if mode in KIND_ONLY_MODES and kind != KIND:
        return "data_security_mode", f"{mode} needs kind: {KIND} (the API accepts it only with kind)"
    for flag in ("is_single_node", "use_ml_runtime"):
        if cluster.get(flag) is not None and kind != KIND:
            return flag, f"needs kind: {KIND} (the API accepts it only with kind)"
    if mode in STANDARD_MODES:
        return "data_security_mode", f"{mode}: {STANDARD_REASON} — {DEDICATED_FIX}"
    if mode == AUTO_MODE:
        return "data_security_mode", f"{AUTO_REASON} — {DEDICATED_FIX}"
    if mode in DEDICATED_MODES and not cluster.get("single_user_name"):
        return "single_user_name", (
            f"data_security_mode {mode} needs single_user_name (the user or group the cluster is dedicated to); "
            "left out, the workspace fills in the creator and every plan shows a change"
        )
    single = cluster.get("is_single_node") is True
    workers = cluster.get("num_workers")
    if single and (cluster.get("autoscale") or (workers or 0) > 0):
        return "is_single_node", "a single-node cluster has no workers — drop num_workers/autoscale"
    if not cluster.get("autoscale") and not workers and not single and not _legacy_single_node(cluster):
        return "num_workers", (
            "0 workers is only valid for a single-node cluster — set num_workers/autoscale, or kind: "
            f"{KIND} with is_single_node: true"
        )
    return None


def _legacy_single_node(cluster: Mapping[str, Any]) -> bool:
    conf = cluster.get("spark_conf") or {}
    tags = cluster.get("custom_tags") or {}
    return (
        conf.get("spark.databricks.cluster.profile") == "singleNode"
        and str(conf.get("spark.master", "")).startswith("local")
        and tags.get("ResourceClass") == "SingleNode"
    )
