"""Spark-conf facts of the real `databricks/databricks` provider, as `status` must see them.

`clusters/resource_cluster.go` `SparkConfDiffSuppressFunc` (terraform-provider-databricks):
a diff on `spark_conf.spark.databricks.delta.preview.enabled` is suppressed (legacy
workspaces set it themselves), and so is `spark_conf.%` going from 1 to 0. SDKv2 applies a
map's suppress function to each key's diff and to the count separately, so the count rule
only hides anything when the one key left is the suppressed one — which the per-key rule
below already covers. Terraform never shows those diffs, so `status` must not either. The
sandbox's stand-in provider keeps its own copy (provisioner/sandbox/provider/cluster_maps.py),
held equal by tests/sandbox/test_standalone.py.
"""

from __future__ import annotations

from collections.abc import Mapping

DIFF_SUPPRESSED_SPARK_CONF = frozenset({"spark.databricks.delta.preview.enabled"})


def suppress_spark_conf_diff(
    prior: Mapping[str, str] | None, planned: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The planned spark_conf after the provider's diff suppression (prior = the state's)."""
    if prior is None:
        return None if planned is None else dict(planned)
    out = dict(planned or {})
    for key in DIFF_SUPPRESSED_SPARK_CONF:
        if key in prior:
            out[key] = prior[key]
        else:
            out.pop(key, None)
    return out or (None if planned is None else {})
