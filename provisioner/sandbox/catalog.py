"""What an Azure Databricks workspace offers that no one creates: runtimes, node types, policy families.

One home for these lists: the workspace emulator answers `clusters/spark-versions`,
`clusters/list-node-types` and `policy-families` from them, and the stand-in provider's
data sources read the same answers through the API.

Shapes are databricks-sdk-py `service/compute.py` (`GetSparkVersionsResponse` /
`SparkVersion`, `ListNodeTypesResponse` / `NodeType` / `NodeInstanceType`,
`PolicyFamily`). The keys and names follow the real ones ("15.4 LTS (includes Apache Spark
3.5.0, Scala 2.12)"; Microsoft Learn "Databricks Runtime release notes versions and
compatibility"), because clients parse them: `ClustersExt.select_spark_version`
(databricks-sdk-py `mixins/compute.py`, ported from databricks-sdk-go
`service/compute/spark_version.go`) keeps a key with `-scala<v>`, LTS from "LTS" in the
name, ML/GPU/Photon from `-ml-`/`-gpu-`/`-photon-` in the key, and sorts the keys as
semantic versions. Node types are Azure VM sizes with Azure's cores, memory and temporary
disk (Microsoft Learn "Sizes for virtual machines in Azure": Dsv2, Ddsv5, Edsv4, Fsv2),
which `select_node_type` filters on (`local_disk` needs `node_instance_type.local_disks`).
Policy families are the built-in ones of "Default policies and policy families" (Microsoft
Learn, compute policy reference): Personal Compute, Shared Compute, Power User Compute,
Job Compute.
"""

from __future__ import annotations

import json
from typing import Any

_RUNTIMES: tuple[tuple[str, str, str], ...] = (
    # (version, Apache Spark, label suffix) — "" is a standard release.
    ("12.2", "3.3.2", " LTS"),
    ("13.3", "3.4.1", " LTS"),
    ("14.3", "3.5.0", " LTS"),
    ("15.4", "3.5.0", " LTS"),
    ("16.3", "3.5.2", ""),
    ("16.4", "3.5.2", " LTS"),
)


def spark_versions() -> list[dict[str, str]]:
    """`clusters/spark-versions`' `versions`: each runtime plain, ML, GPU ML and Photon (Scala 2.12)."""
    versions: list[dict[str, str]] = []
    for version, spark, label in _RUNTIMES:
        tail = f"(includes Apache Spark {spark}, Scala 2.12)"
        versions += [
            {"key": f"{version}.x-scala2.12", "name": f"{version}{label} {tail}"},
            {"key": f"{version}.x-cpu-ml-scala2.12", "name": f"{version}{label} ML {tail}"},
            {"key": f"{version}.x-gpu-ml-scala2.12", "name": f"{version}{label} ML {tail}"},
            {"key": f"{version}.x-photon-scala2.12", "name": f"{version}{label} Photon {tail}"},
        ]
    versions.append({"key": "16.4.x-scala2.13", "name": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"})
    return versions


def spark_version_keys() -> frozenset[str]:
    return frozenset(v["key"] for v in spark_versions())


# (node type, cores, memory GiB, temporary disk GiB, category)
_NODE_TYPES: tuple[tuple[str, int, int, int, str], ...] = (
    ("Standard_DS3_v2", 4, 14, 28, "General Purpose"),
    ("Standard_DS4_v2", 8, 28, 56, "General Purpose"),
    ("Standard_DS5_v2", 16, 56, 112, "General Purpose"),
    ("Standard_D4ds_v5", 4, 16, 150, "General Purpose"),
    ("Standard_D8ds_v5", 8, 32, 300, "General Purpose"),
    ("Standard_E4ds_v4", 4, 32, 150, "Memory Optimized"),
    ("Standard_E8ds_v4", 8, 64, 300, "Memory Optimized"),
    ("Standard_F4s", 4, 8, 16, "Compute Optimized"),
    ("Standard_F8s", 8, 16, 32, "Compute Optimized"),
)


def node_types() -> list[dict[str, Any]]:
    """`clusters/list-node-types`' `node_types`."""
    out: list[dict[str, Any]] = []
    for order, (name, cores, memory_gb, disk_gb, category) in enumerate(_NODE_TYPES):
        out.append(
            {
                "node_type_id": name,
                "instance_type_id": name,
                "description": name,
                "memory_mb": memory_gb * 1024,
                "num_cores": float(cores),
                "num_gpus": 0,
                "category": category,
                "is_deprecated": False,
                "is_hidden": False,
                "is_io_cache_enabled": name.endswith("ds_v5") or name.endswith("ds_v4"),
                "support_port_forwarding": True,
                "support_ebs_volumes": False,
                "support_cluster_tags": True,
                "supports_elastic_disk": True,
                "photon_driver_capable": True,
                "photon_worker_capable": True,
                "display_order": order,
                "node_instance_type": {
                    "instance_type_id": name,
                    "local_disks": 1,
                    "local_disk_size_gb": disk_gb,
                },
                "node_info": {"status": []},
            }
        )
    return out


def node_type_ids() -> frozenset[str]:
    return frozenset(name for name, *_ in _NODE_TYPES)


_FAMILIES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    (
        "personal-vm",
        "Personal Compute",
        "Use with small-to-medium data or libraries like pandas and scikit-learn. Spark runs in local mode.",
        {
            "node_type_id": {"type": "allowlist", "values": list(node_type_ids()), "defaultValue": "Standard_DS3_v2"},
            "spark_conf.spark.databricks.cluster.profile": {"type": "fixed", "value": "singleNode", "hidden": True},
            "num_workers": {"type": "fixed", "value": 0, "hidden": True},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
        },
    ),
    (
        "shared-compute",
        "Shared Compute",
        "Use with multiple users sharing compute resources.",
        {
            "data_security_mode": {"type": "fixed", "value": "USER_ISOLATION", "hidden": True},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-lts"},
        },
    ),
    (
        "power-user",
        "Power User Compute",
        "Use with multi-node compute for large workloads.",
        {
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
            "autoscale.max_workers": {"type": "range", "maxValue": 10, "defaultValue": 2},
        },
    ),
    (
        "job-cluster",
        "Job Compute",
        "Use with jobs.",
        {
            "cluster_type": {"type": "fixed", "value": "job"},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-lts"},
        },
    ),
)


def policy_families() -> list[dict[str, str]]:
    """`policy-families`' `policy_families` (the definition is a JSON string, as the API sends it)."""
    return [
        {
            "policy_family_id": family_id,
            "name": name,
            "description": description,
            "definition": json.dumps(definition, sort_keys=True),
        }
        for family_id, name, description, definition in _FAMILIES
    ]
