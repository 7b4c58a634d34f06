"""The stand-in's own copy of two rules about a cluster's map attributes (issue 24: the
emulator imports nothing of the product; tests/sandbox/test_standalone.py holds this copy
equal to the tool's, provisioner/databricks/cluster_fields.py and spark_conf.py).

- The string-to-string maps of a cluster spec: `spark_conf`, `spark_env_vars`, `custom_tags`
  (`ClusterSpec` in databricks-sdk-go `service/compute/model.go`, databricks-sdk-py
  `service/compute.py`: `Dict[str, str]`). SDKv2 stores an empty one as null.
- `SparkConfDiffSuppressFunc` (terraform-provider-databricks `clusters/resource_cluster.go`,
  set on `spark_conf` by `SetCustomSuppressDiff`): a diff on
  `spark_conf.spark.databricks.delta.preview.enabled` is suppressed (legacy workspaces set it
  themselves), and so is `spark_conf.%` going from 1 to 0. SDKv2 applies a map's suppress
  function to each key and to the count separately, so the count rule hides something only
  when the one key left is the suppressed one, which the per-key rule already covers.
"""

from __future__ import annotations

from collections.abc import Mapping

MAP_FIELDS = ("spark_conf", "spark_env_vars", "custom_tags")

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
