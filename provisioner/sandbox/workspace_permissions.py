"""Who may call what: the permission table and the cluster permissions API.

Permission checks answer the real error, 403 `PERMISSION_DENIED` (sources in
store/identities.py). `/api/2.0/permissions/clusters/{id}` (databricks-sdk-py `service/iam.py`
`PermissionsAPI`), which needs CAN_MANAGE: GET reads the ACL, PATCH (`update`) adds to it,
PUT (`set`: "Sets permissions on an object, replacing existing permissions if they exist")
replaces the whole list — a creator left out of it loses its CAN_MANAGE, which is why the
provider adds the caller as CAN_MANAGE to every list it PUTs (terraform-provider-databricks
`permissions/permission_definitions.go`, `update.AddCurrentUserAsManage` for clusters);
`GET …/{id}/permissionLevels` (`get_permission_levels`) lists the levels a cluster has
(`CLUSTER_LEVELS`; the same file's `allowedPermissionLevels` for `clusters`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.store.identities import ADMINS, CLUSTER_LEVELS, SCOPE_LEVELS, rank
from provisioner.sandbox.wire import Request, Response, json_response
from provisioner.sandbox.workspace_common import Body, error, required

PERMISSIONS_RE = re.compile(r"^/api/2\.0/permissions/clusters/(?P<cluster_id>[^/]+)(?P<levels>/permissionLevels)?$")
_LEVEL_TEXT = {
    "CAN_ATTACH_TO": "Can attach to the cluster",
    "CAN_RESTART": "Can restart the cluster",
    "CAN_MANAGE": "Can manage the cluster",
}

# endpoint -> (what the permission is on, the level it needs); absent = any caller.
REQUIRES: dict[str, tuple[str, str]] = {
    "clusters/get": ("cluster", "CAN_ATTACH_TO"),
    "clusters/events": ("cluster", "CAN_ATTACH_TO"),
    "clusters/start": ("cluster", "CAN_RESTART"),
    "clusters/restart": ("cluster", "CAN_RESTART"),
    "clusters/edit": ("cluster", "CAN_MANAGE"),
    "clusters/resize": ("cluster", "CAN_MANAGE"),
    "clusters/delete": ("cluster", "CAN_MANAGE"),
    "clusters/permanent-delete": ("cluster", "CAN_MANAGE"),
    # "This API can only be called by workspace admins" (Clusters API reference, pin/unpin).
    "clusters/pin": ("admin", ""),
    "clusters/unpin": ("admin", ""),
    # "You must be an admin" (ClustersAPI.change_owner, databricks-sdk-py service/compute.py).
    "clusters/change-owner": ("admin", ""),
    "secrets/scopes/delete": ("scope", "MANAGE"),
    "secrets/put": ("scope", "WRITE"),
    "secrets/delete": ("scope", "WRITE"),
    "secrets/list": ("scope", "READ"),
    "secrets/acls/list": ("scope", "MANAGE"),
    "secrets/acls/get": ("scope", "MANAGE"),
    "secrets/acls/put": ("scope", "MANAGE"),
    "secrets/acls/delete": ("scope", "MANAGE"),
}


def authorize(store: SandboxStore, ws: str, endpoint: str, body: Body, principal: dict[str, Any]) -> None:
    need = REQUIRES.get(endpoint)
    if need is None:
        return
    kind, level = need
    who = principal["userName"]
    if kind == "admin":
        if ADMINS not in principal.get("groups", []):
            raise DatabricksError(403, "PERMISSION_DENIED", f"{who} is not a workspace admin")
        return
    if kind == "cluster":
        cluster_id = required(body, "cluster_id")
        have = store.cluster_level(ws, cluster_id, principal)
        if store.get_cluster(ws, cluster_id) is None:
            return  # the endpoint answers "does not exist"
        if rank(CLUSTER_LEVELS, have) < rank(CLUSTER_LEVELS, level):
            raise DatabricksError(
                403,
                "PERMISSION_DENIED",
                f"User {who} does not have {level} permission on cluster {cluster_id}. "
                "Please contact your administrator.",
            )
        return
    scope = required(body, "scope")
    if not any(s["name"] == scope for s in store.list_scopes(ws)):
        return  # the endpoint answers RESOURCE_DOES_NOT_EXIST
    have = store.scope_level(ws, scope, principal)
    if rank(SCOPE_LEVELS, have) < rank(SCOPE_LEVELS, level):
        raise DatabricksError(
            403,
            "PERMISSION_DENIED",
            f"User {who} does not have {level} permission on scope {scope}",
        )


def cluster_permissions(
    store: SandboxStore, request: Request, ws: str, cluster_id: str, principal: dict[str, Any], levels: bool = False
) -> Response:
    """`/api/2.0/permissions/clusters/{id}`: GET the ACL, PATCH to add entries, PUT to replace them;
    `levels`: `…/permissionLevels`."""
    if store.get_cluster(ws, cluster_id) is None:
        return error(404, "RESOURCE_DOES_NOT_EXIST", f"Cluster {cluster_id} does not exist")
    level = store.cluster_level(ws, cluster_id, principal)
    reading = request.method == "GET"
    needed = str(store.faults().get("workspace.permissions_read_level") or "CAN_MANAGE") if reading else "CAN_MANAGE"
    if rank(CLUSTER_LEVELS, level) < rank(CLUSTER_LEVELS, needed):
        return error(
            403,
            "PERMISSION_DENIED",
            f"User {principal['userName']} does not have {needed} permission on cluster {cluster_id}",
        )
    if levels:
        if request.method != "GET":
            return error(405, "BAD_REQUEST", f"Method {request.method} not allowed")
        return json_response(
            200,
            {"permission_levels": [{"permission_level": x, "description": _LEVEL_TEXT[x]} for x in CLUSTER_LEVELS]},
        )
    if request.method in ("PATCH", "PUT"):
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
        entries: dict[str, str] = {}
        for entry in body.get("access_control_list") or []:
            name = entry.get("user_name") or entry.get("service_principal_name") or entry.get("group_name")
            level = entry.get("permission_level")
            if not name or level not in CLUSTER_LEVELS:
                return error(400, "INVALID_PARAMETER_VALUE", f"Invalid permission level {level} for {name}")
            entries[str(name)] = str(level)
        try:
            if request.method == "PUT":
                store.replace_cluster_acl(ws, cluster_id, entries)
            for name, level in entries.items() if request.method == "PATCH" else ():
                store.set_cluster_permission(ws, cluster_id, name, level)
        except DatabricksError as exc:
            return error(exc.status, exc.error_code, exc.message)
    elif request.method != "GET":
        return error(405, "BAD_REQUEST", f"Method {request.method} not allowed")
    acl = store.cluster_acl(ws, cluster_id)
    groups = store.group_names()
    return json_response(
        200,
        {
            "object_id": f"/clusters/{cluster_id}",
            "object_type": "cluster",
            "access_control_list": [
                {
                    _principal_field(name, groups): name,
                    "all_permissions": [{"permission_level": lvl, "inherited": False}],
                }
                for name, lvl in sorted(acl.items())
            ]
            + [
                {
                    "group_name": ADMINS,
                    "all_permissions": [
                        {
                            "permission_level": "CAN_MANAGE",
                            "inherited": True,
                            "inherited_from_object": ["/clusters/"],
                        }
                    ],
                }
            ],
        },
    )


def _principal_field(name: str, groups: set[str]) -> str:
    if name in groups or name in ("users", ADMINS):
        return "group_name"
    return "user_name" if "@" in name else "service_principal_name"
