"""Instance pools, cluster libraries, and the permissions of cluster policies and instance pools.

- `instance-pools/create|edit|delete|get|list` (databricks-sdk-py `service/compute.py`
  `InstancePoolsAPI`): create/edit/delete need a workspace admin (or the
  `allow_instance_pool_create` entitlement, which the sandbox's non-admins do not have).
- `libraries/install|uninstall|cluster-status|all-cluster-statuses` (`LibrariesAPI`; store/objects.py
  says how statuses move).
- `/api/2.0/permissions/cluster-policies/{id}` and `/api/2.0/permissions/instance-pools/{id}`
  (`service/iam.py` `PermissionsAPI`: GET, PATCH `update` adds, PUT `set` replaces the whole
  list), the levels terraform-provider-databricks `permissions/permission_definitions.go`
  allows for them: CAN_USE for a policy, CAN_ATTACH_TO / CAN_MANAGE for a pool. Reading or
  changing them needs a workspace admin here (policies have no CAN_MANAGE level; a pool's
  non-admin CAN_MANAGE holders are not modelled). Workspace admins hold CAN_MANAGE on every
  pool by inheritance, shown as the `admins` group's inherited entry as Databricks shows it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.store.identities import ADMINS
from provisioner.sandbox.store.objects import POLICY_LEVELS, POOL_LEVELS
from provisioner.sandbox.wire import Request, Response, json_response
from provisioner.sandbox.workspace_common import Body, Endpoint, caller, error, required

OBJECT_PERMISSIONS_RE = re.compile(
    r"^/api/2\.0/permissions/(?P<kind>cluster-policies|instance-pools)/(?P<object_id>[^/]+)(?P<levels>/permissionLevels)?$"
)
_KINDS = {
    # request object type -> (object_type in answers, levels)
    "cluster-policies": ("cluster-policy", POLICY_LEVELS),
    "instance-pools": ("instance-pool", POOL_LEVELS),
}


def _admin_only() -> None:
    who = caller()
    if ADMINS not in who.get("groups", []):
        raise DatabricksError(403, "PERMISSION_DENIED", f"{who['userName']} is not a workspace admin")


class ObjectEndpoints:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store

    def endpoints(self) -> dict[str, tuple[str, Endpoint]]:
        return {
            "instance-pools/create": ("POST", self._create_pool),
            "instance-pools/edit": ("POST", self._edit_pool),
            "instance-pools/delete": ("POST", self._delete_pool),
            "instance-pools/get": ("GET", self._get_pool),
            "instance-pools/list": ("GET", self._list_pools),
            "libraries/install": ("POST", self._install),
            "libraries/uninstall": ("POST", self._uninstall),
            "libraries/cluster-status": ("GET", self._cluster_status),
            "libraries/all-cluster-statuses": ("GET", self._all_statuses),
        }

    # ---- instance pools ----------------------------------------------------------------

    def _create_pool(self, ws: str, body: Body) -> Body:
        _admin_only()
        return {"instance_pool_id": self.store.create_instance_pool(ws, body)}

    def _edit_pool(self, ws: str, body: Body) -> Body:
        _admin_only()
        required(body, "instance_pool_id")
        self.store.edit_instance_pool(ws, body)
        return {}

    def _delete_pool(self, ws: str, body: Body) -> Body:
        _admin_only()
        self.store.delete_instance_pool(ws, required(body, "instance_pool_id"))
        return {}

    def _get_pool(self, ws: str, body: Body) -> Body:
        return self.store.get_instance_pool(ws, required(body, "instance_pool_id"))

    def _list_pools(self, ws: str, body: Body) -> Body:
        pools = self.store.list_instance_pools(ws)
        return {"instance_pools": pools} if pools else {}

    # ---- libraries ---------------------------------------------------------------------

    def _libraries(self, body: Body) -> list[dict[str, Any]]:
        libraries = body.get("libraries")
        if not isinstance(libraries, list) or not all(isinstance(x, dict) and x for x in libraries):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: libraries")
        return libraries

    def _install(self, ws: str, body: Body) -> Body:
        self._can_manage(ws, required(body, "cluster_id"))
        self.store.install_libraries(ws, body["cluster_id"], self._libraries(body))
        return {}

    def _uninstall(self, ws: str, body: Body) -> Body:
        self._can_manage(ws, required(body, "cluster_id"))
        self.store.uninstall_libraries(ws, body["cluster_id"], self._libraries(body))
        return {}

    def _can_manage(self, ws: str, cluster_id: str) -> None:
        if self.store.get_cluster(ws, cluster_id) is None:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        if self.store.cluster_level(ws, cluster_id, caller()) != "CAN_MANAGE":
            raise DatabricksError(
                403,
                "PERMISSION_DENIED",
                f"User {caller()['userName']} does not have CAN_MANAGE permission on cluster {cluster_id}. "
                "Please contact your administrator.",
            )

    def _cluster_status(self, ws: str, body: Body) -> Body:
        cluster_id = required(body, "cluster_id")
        statuses = self.store.library_statuses(ws, cluster_id)
        return {"cluster_id": cluster_id, **({"library_statuses": statuses} if statuses else {})}

    def _all_statuses(self, ws: str, body: Body) -> Body:
        out = []
        for cluster in self.store.list_clusters(ws):
            statuses = self.store.library_statuses(ws, cluster["cluster_id"])
            if statuses:
                out.append({"cluster_id": cluster["cluster_id"], "library_statuses": statuses})
        return {"statuses": out} if out else {}


def object_permissions(store: SandboxStore, request: Request, ws: str, match: re.Match[str]) -> Response:
    """`/api/2.0/permissions/{cluster-policies|instance-pools}/{id}[/permissionLevels]`."""
    kind, object_id = match.group("kind"), match.group("object_id")
    object_type, levels = _KINDS[kind]
    try:
        if kind == "cluster-policies":
            store.get_policy(ws, object_id)
        else:
            store.get_instance_pool(ws, object_id)
    except DatabricksError:
        noun = "Cluster policy" if kind == "cluster-policies" else "Instance pool"
        return error(404, "RESOURCE_DOES_NOT_EXIST", f"{noun} {object_id} does not exist")
    who = caller()
    if ADMINS not in who.get("groups", []):
        return error(
            403, "PERMISSION_DENIED", f"User {who['userName']} does not have permission to manage {object_type}"
        )
    if match.group("levels"):
        return json_response(200, {"permission_levels": [{"permission_level": x} for x in levels]})
    path = f"{kind}/{object_id}"
    if request.method in ("PUT", "PATCH"):
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
        entries: dict[str, str] = {}
        for entry in body.get("access_control_list") or []:
            name = entry.get("user_name") or entry.get("service_principal_name") or entry.get("group_name")
            level = entry.get("permission_level")
            if not name or level not in levels:
                return error(400, "INVALID_PARAMETER_VALUE", f"Permission {level} is not supported for {object_type}")
            if entry.get("group_name") == ADMINS:
                return error(
                    400, "INVALID_PARAMETER_VALUE", f"Cannot change permissions of the admins group on {object_type}"
                )
            entries[str(name)] = str(level)
        if request.method == "PUT":
            store.replace_object_acl(ws, path, entries)
        else:
            store.update_object_acl(ws, path, entries)
    elif request.method != "GET":
        return error(405, "BAD_REQUEST", f"Method {request.method} not allowed")
    acl = store.object_acl(ws, path)
    groups = store.group_names()
    entries_out: list[dict[str, Any]] = [
        {_principal_field(name, groups): name, "all_permissions": [{"permission_level": lvl, "inherited": False}]}
        for name, lvl in sorted(acl.items())
    ]
    entries_out.append(
        {
            "group_name": ADMINS,
            "all_permissions": [
                {"permission_level": levels[-1], "inherited": True, "inherited_from_object": [f"/{kind}/"]}
            ],
        }
    )
    return json_response(
        200, {"object_id": f"/{kind}/{object_id}", "object_type": object_type, "access_control_list": entries_out}
    )


def _principal_field(name: str, groups: set[str]) -> str:
    # As workspace_permissions.py reads a cluster's ACL: groups by name, users by e-mail.
    if name in groups or name in ("users", ADMINS):
        return "group_name"
    return "user_name" if "@" in name else "service_principal_name"
