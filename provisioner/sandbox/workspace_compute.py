"""Compute reads no one creates: runtimes, node types, cluster events, policy families.

Requests and answers as databricks-sdk-py `service/compute.py` sends and reads them:
- `GET /api/2.1/clusters/spark-versions` → `{"versions": [{"key", "name"}]}` and
  `GET /api/2.1/clusters/list-node-types` → `{"node_types": […]}` (lists in catalog.py);
- `POST /api/2.1/clusters/events {cluster_id, event_types, order, start_time, end_time,
  offset, limit}` → `{"events", "total_count", "next_page"}`: `order` DESC by default,
  `limit` 50 by default and at most 500 (`GetEvents` docstrings), and `next_page` is the
  request for the next page, which `ClustersAPI.events` sends back as it is;
- `GET /api/2.0/policy-families` (`max_results`, `page_token` → `next_page_token`) and
  `GET /api/2.0/policy-families/{id}` (`PolicyFamiliesAPI`); an unknown id answers 404
  `RESOURCE_DOES_NOT_EXIST`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from provisioner.sandbox.catalog import node_types, policy_families, spark_versions
from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.workspace_common import Body, Endpoint, required

POLICY_FAMILIES_RE = re.compile(r"^/api/2\.0/policy-families(?:/(?P<family_id>[^/]+))?$")
EVENTS_DEFAULT_LIMIT = 50
EVENTS_MAX_LIMIT = 500
_EVENT_TYPES = frozenset(
    {
        "ADD_NODES_FAILED",
        "AUTOSCALING_STATS_REPORT",
        "CREATING",
        "DBFS_DOWN",
        "DID_NOT_EXPAND_DISK",
        "DRIVER_HEALTHY",
        "DRIVER_NOT_RESPONDING",
        "DRIVER_UNAVAILABLE",
        "EDITED",
        "EXPANDED_DISK",
        "FAILED_TO_EXPAND_DISK",
        "INIT_SCRIPTS_FINISHED",
        "INIT_SCRIPTS_STARTED",
        "METASTORE_DOWN",
        "NODES_LOST",
        "NODE_BLACKLISTED",
        "NODE_EXCLUDED_DECOMMISSIONED",
        "PINNED",
        "RESIZING",
        "RESTARTING",
        "RUNNING",
        "SPARK_EXCEPTION",
        "STARTING",
        "TERMINATING",
        "UNPINNED",
        "UPSIZE_COMPLETED",
    }
)


class ComputeEndpoints:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store

    def endpoints(self) -> dict[str, tuple[str, Endpoint]]:
        return {
            "clusters/spark-versions": ("GET", lambda ws, body: {"versions": spark_versions()}),
            "clusters/list-node-types": ("GET", lambda ws, body: {"node_types": node_types()}),
            "clusters/events": ("POST", self._events),
        }

    def _events(self, ws: str, body: Body) -> Body:
        cluster_id = required(body, "cluster_id")
        kinds = body.get("event_types") or []
        unknown = sorted(set(kinds) - _EVENT_TYPES)
        if unknown:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid event type: {unknown[0]}")
        order = body.get("order") or "DESC"
        if order not in ("ASC", "DESC"):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid order: {order}")
        limit = _int(body, "limit", EVENTS_DEFAULT_LIMIT)
        if not 1 <= limit <= EVENTS_MAX_LIMIT:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"limit must be between 1 and {EVENTS_MAX_LIMIT}")
        offset = _int(body, "offset", 0)
        events = self.store.cluster_events(
            ws,
            cluster_id,
            event_types=frozenset(kinds),
            newest_first=order == "DESC",
            start_time=body.get("start_time"),
            end_time=body.get("end_time"),
        )
        page = events[offset : offset + limit]
        out: Body = {"total_count": len(events)}
        if page:
            out["events"] = page
        if offset + limit < len(events):
            out["next_page"] = {**body, "offset": offset + limit, "limit": limit}
        return out


def policy_family_answer(path_match: re.Match[str], query: dict[str, str]) -> Body:
    """`GET /api/2.0/policy-families[/{id}]`; raises DatabricksError for an unknown id."""
    families = policy_families()
    family_id = path_match.group("family_id")
    if family_id is not None:
        for family in families:
            if family["policy_family_id"] == family_id:
                return family
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Policy family {family_id} does not exist.")
    size = _int(query, "max_results", len(families)) or len(families)
    start = 0
    if query.get("page_token"):
        try:
            start = int(base64.urlsafe_b64decode(query["page_token"].encode()).decode())
        except ValueError:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Invalid page_token") from None
    out: Body = {"policy_families": families[start : start + size]}
    if start + size < len(families):
        out["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return out


def _int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"{name} must be an integer") from None
