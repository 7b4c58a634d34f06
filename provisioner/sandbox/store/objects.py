"""Instance pools, cluster libraries and the ACLs of cluster policies and instance pools.

Shapes and texts from databricks-sdk-py `service/compute.py` (`InstancePoolsAPI`:
`CreateInstancePool`, `GetInstancePool`, `EditInstancePool`; `LibrariesAPI`: `Library`,
`LibraryFullStatus`, `ClusterLibraryStatuses`) and `service/iam.py` (`PermissionsAPI`,
`ObjectPermissions`). Libraries on a cluster: `libraries/install` adds them (an
already-installed one again is no change), RUNNING clusters install at once (the sandbox has
no package index: every library reaches INSTALLED), a terminated cluster keeps them PENDING
until it starts; `libraries/uninstall` marks them UNINSTALL_ON_RESTART until the cluster
restarts, as Databricks does ("Uninstalling a library requires a cluster restart",
Databricks docs "Cluster libraries").
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, StoreBase, workspace_state

POOL_LEVELS = ("CAN_ATTACH_TO", "CAN_MANAGE")
POLICY_LEVELS = ("CAN_USE",)
_ALNUM = string.ascii_lowercase + string.digits
_POOL_READ_ONLY = frozenset({"instance_pool_id", "state", "stats", "status", "default_tags"})


def _pools(ws: dict[str, Any]) -> dict[str, Any]:
    pools: dict[str, Any] = ws.setdefault("instance_pools", {})
    return pools


def _pool(ws: dict[str, Any], pool_id: str) -> dict[str, Any]:
    pool = _pools(ws).get(pool_id)
    if pool is None:
        raise DatabricksError(
            400, "INVALID_PARAMETER_VALUE", f"Instance pool {pool_id} does not exist or has been deleted"
        )
    record: dict[str, Any] = pool
    return record


def library_key(library: Mapping[str, Any]) -> str:
    """One library's identity: its JSON (a `pypi` package and a `whl` path are different libraries)."""
    return json.dumps(library, sort_keys=True)


class ObjectStore(StoreBase):
    # ---- instance pools ----------------------------------------------------------------

    def create_instance_pool(self, workspace_key: str, spec: Mapping[str, Any]) -> str:
        for field in ("instance_pool_name", "node_type_id"):
            if not spec.get(field):
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {field}")
        body = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _POOL_READ_ONLY}
        pool_id = "".join(secrets.choice(_ALNUM) for _ in range(4))
        pool_id = f"{pool_id}-{''.join(secrets.choice(_ALNUM) for _ in range(6))}-pool-" + "".join(
            secrets.choice(_ALNUM) for _ in range(8)
        )
        with self._txn() as state:
            _pools(workspace_state(state, workspace_key))[pool_id] = body
        return pool_id

    def edit_instance_pool(self, workspace_key: str, spec: Mapping[str, Any]) -> None:
        pool_id = str(spec.get("instance_pool_id") or "")
        with self._txn() as state:
            pool = _pool(workspace_state(state, workspace_key), pool_id)
            if spec.get("node_type_id") not in (None, pool.get("node_type_id")):
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "node_type_id cannot be changed")
            pool.clear()
            pool.update({k: copy.deepcopy(v) for k, v in spec.items() if k not in _POOL_READ_ONLY})

    def get_instance_pool(self, workspace_key: str, pool_id: str) -> dict[str, Any]:
        with self._txn() as state:
            return _pool_view(pool_id, _pool(workspace_state(state, workspace_key), pool_id))

    def list_instance_pools(self, workspace_key: str) -> list[dict[str, Any]]:
        with self._txn() as state:
            pools = _pools(workspace_state(state, workspace_key))
            return [_pool_view(k, pools[k]) for k in sorted(pools)]

    def delete_instance_pool(self, workspace_key: str, pool_id: str) -> None:
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            _pool(ws, pool_id)
            del _pools(ws)[pool_id]
            ws.setdefault("object_acls", {}).pop(f"instance-pools/{pool_id}", None)

    # ---- libraries ---------------------------------------------------------------------

    def install_libraries(self, workspace_key: str, cluster_id: str, libraries: list[dict[str, Any]]) -> None:
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            cluster = ws["clusters"].get(cluster_id)
            if cluster is None:
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
            installed = cluster.setdefault("libraries", {})
            status = "INSTALLED" if cluster.get("state") in ("RUNNING", "RESIZING") else "PENDING"
            for library in libraries:
                entry = installed.get(library_key(library))
                if entry is None or entry["status"] == "UNINSTALL_ON_RESTART":
                    installed[library_key(library)] = {"library": copy.deepcopy(library), "status": status}

    def uninstall_libraries(self, workspace_key: str, cluster_id: str, libraries: list[dict[str, Any]]) -> None:
        with self._txn() as state:
            cluster = workspace_state(state, workspace_key)["clusters"].get(cluster_id)
            if cluster is None:
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
            installed = cluster.setdefault("libraries", {})
            for library in libraries:
                entry = installed.get(library_key(library))
                if entry is not None:
                    entry["status"] = "UNINSTALL_ON_RESTART"

    def library_statuses(self, workspace_key: str, cluster_id: str) -> list[dict[str, Any]]:
        """`library_statuses` of `libraries/cluster-status`; a started cluster settles its libraries."""
        with self._txn() as state:
            cluster = workspace_state(state, workspace_key)["clusters"].get(cluster_id)
            if cluster is None:
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
            installed = cluster.setdefault("libraries", {})
            if cluster.get("state") == "RUNNING":
                started = [cluster.get("start_time"), cluster.get("last_restarted_time")]
                restarted = cluster.get("libraries_seen_start") != started
                for key, entry in list(installed.items()):
                    if entry["status"] == "PENDING":
                        entry["status"] = "INSTALLED"
                    elif entry["status"] == "UNINSTALL_ON_RESTART" and restarted:
                        del installed[key]
                cluster["libraries_seen_start"] = started
            return [
                {"library": copy.deepcopy(e["library"]), "status": e["status"], "is_library_for_all_clusters": False}
                for e in installed.values()
            ]

    # ---- ACLs of cluster policies and instance pools -----------------------------------

    def object_acl(self, workspace_key: str, object_path: str) -> dict[str, str]:
        """`object_path`: `cluster-policies/<id>` or `instance-pools/<id>`; principal → level."""
        with self._txn() as state:
            acls = workspace_state(state, workspace_key).setdefault("object_acls", {})
            return dict(acls.get(object_path, {}))

    def replace_object_acl(self, workspace_key: str, object_path: str, acl: Mapping[str, str]) -> None:
        with self._txn() as state:
            workspace_state(state, workspace_key).setdefault("object_acls", {})[object_path] = dict(acl)

    def update_object_acl(self, workspace_key: str, object_path: str, acl: Mapping[str, str]) -> None:
        with self._txn() as state:
            acls = workspace_state(state, workspace_key).setdefault("object_acls", {})
            acls.setdefault(object_path, {}).update(acl)


def _pool_view(pool_id: str, pool: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {"instance_pool_id": pool_id, **copy.deepcopy(dict(pool))}
    view.setdefault("min_idle_instances", 0)
    view.setdefault("enable_elastic_disk", True)
    view["default_tags"] = {
        "Vendor": "Databricks",
        "DatabricksInstancePoolId": pool_id,
        "DatabricksInstancePoolCreatorId": "sandbox",
    }
    view["state"] = "ACTIVE"
    view["stats"] = {"used_count": 0, "idle_count": 0, "pending_used_count": 0, "pending_idle_count": 0}
    return view
