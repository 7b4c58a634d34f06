"""Groups of a cluster spec's attributes, in the Clusters API's own names (databricks-sdk-py
`service/compute.py` `ClusterSpec`; terraform-provider-databricks `clusters/resource_cluster.go`),
for the code that treats each group alike: policies, plan review. The sandbox's stand-in
provider keeps its own copy of MAP_FIELDS (provisioner/sandbox/provider/cluster_maps.py),
held equal by tests/sandbox/test_standalone.py."""

from __future__ import annotations

# Name, runtime and size: plain values every cluster has.
BASIC_FIELDS = (
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autotermination_minutes",
)
# String-to-string maps, set (and constrained by a policy path such as `spark_conf.<key>`) key by key.
MAP_FIELDS = ("spark_conf", "spark_env_vars", "custom_tags")
