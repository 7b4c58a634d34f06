"""Cluster specs as the Clusters API accepts them, and the views `clusters/get|list` answer.

databricks-sdk-py `service/compute.py` (`ClusterDetails`, `DataSecurityMode`); the provider's
read-back (`clusters/resource_cluster.go`): server-set fields a client echoes back are
ignored, `is_pinned` is only in `clusters/list` items, a dedicated cluster created without
`single_user_name` is assigned to its creator (databricks/cli `libs/testserver/clusters.go`,
"Match cloud behavior").
"""

from __future__ import annotations

import copy
import secrets
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provisioner.sandbox.store.base import DatabricksError

_ALNUM = string.digits + string.ascii_lowercase

# Fields only the server sets; a client echoing them back must not overwrite ours.
_READ_ONLY_FIELDS = frozenset(
    {
        "cluster_id",
        "state",
        "state_message",
        "cluster_source",
        "start_time",
        "last_restarted_time",
        "terminated_time",
        "termination_reason",
        "creator_user_name",
        "default_tags",
        "is_pinned",
        "pinned_by_user_name",
        "no_wait",
    }
)
DEDICATED = frozenset({"SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED"})


def cluster_id_of(spec: Mapping[str, Any]) -> str:
    cluster_id = spec.get("cluster_id")
    if not isinstance(cluster_id, str) or not cluster_id:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: cluster_id")
    return cluster_id


def new_cluster_id() -> str:
    now = datetime.now(UTC)
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(8))
    return f"{now:%m%d}-{now:%H%M%S}-{suffix}"


def require_version(body: Mapping[str, Any]) -> None:
    if not body.get("spark_version"):
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: spark_version")


def validated_spec(spec: Mapping[str, Any], creator: str) -> dict[str, Any]:
    body = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _READ_ONLY_FIELDS}
    if "num_workers" in body and "autoscale" in body:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Only one of num_workers or autoscale may be specified.")
    minutes = body.get("autotermination_minutes")
    if minutes is not None and not (minutes == 0 or 10 <= minutes <= 43200):
        raise DatabricksError(
            400,
            "INVALID_PARAMETER_VALUE",
            "Automatic termination minutes must be 0 or between 10 and 43200.",
        )
    problem = kind_problem(body)
    if problem:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", problem)
    if body.get("data_security_mode") in DEDICATED and not body.get("single_user_name"):
        # The workspace assigns a dedicated cluster to its creator (databricks/cli
        # libs/testserver/clusters.go, "Match cloud behavior"): the read-back then differs
        # from a config without single_user_name (databricks/cli#4418).
        body["single_user_name"] = creator
    for field in ("spark_conf", "spark_env_vars", "custom_tags"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"{field} must map strings to strings")
    return body


def kind_problem(body: Mapping[str, Any]) -> str | None:
    """SDK `compute.DataSecurityMode`: the DATA_SECURITY_MODE_* aliases, like `is_single_node`
    and `use_ml_runtime`, exist only for `kind = CLASSIC_PREVIEW`."""
    if body.get("kind") not in (None, "CLASSIC_PREVIEW"):
        return f"Invalid kind: {body['kind']}"
    if body.get("kind") is None:
        if str(body.get("data_security_mode", "")).startswith("DATA_SECURITY_MODE_"):
            return f"data_security_mode {body['data_security_mode']} is only supported with kind CLASSIC_PREVIEW"
        for flag in ("is_single_node", "use_ml_runtime"):
            if flag in body:
                return f"{flag} is only supported with kind CLASSIC_PREVIEW"
    return None


def cluster_view(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """What `clusters/get` answers: the accepted spec unchanged, plus server fields."""
    spec = copy.deepcopy(cluster["spec"])
    view: dict[str, Any] = {"cluster_id": cluster["cluster_id"], **spec}
    if "num_workers" not in spec and "autoscale" not in spec:
        view["num_workers"] = 0
    if "node_type_id" in spec:
        view.setdefault("driver_node_type_id", spec["node_type_id"])
    view.setdefault("autotermination_minutes", 0)
    view.setdefault("enable_elastic_disk", True)
    view.setdefault("data_security_mode", "NONE")
    view.setdefault("runtime_engine", "STANDARD")
    view["default_tags"] = {
        "Vendor": "Databricks",
        "Creator": cluster["creator_user_name"],
        "ClusterName": spec.get("cluster_name", ""),
        "ClusterId": cluster["cluster_id"],
    }
    view["creator_user_name"] = cluster["creator_user_name"]
    view["state"] = cluster["state"]
    view["state_message"] = cluster["state_message"]
    view["cluster_source"] = cluster["cluster_source"]
    view["start_time"] = cluster["start_time"]
    for field in ("last_restarted_time", "terminated_time", "termination_reason"):
        if field in cluster:
            view[field] = copy.deepcopy(cluster[field])
    shown = cluster.get("restart_time_shown")
    if shown and time.time() < shown["until"]:
        view["last_restarted_time"] = shown["value"]
    return view


def list_view(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """A `clusters/list` item: the get view, plus `is_pinned` when the cluster is pinned."""
    view = cluster_view(cluster)
    if cluster.get("is_pinned"):
        view["is_pinned"] = True
    return view
