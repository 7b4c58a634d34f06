"""`databricks_permissions` for clusters, cluster policies and instance pools.

As terraform-provider-databricks `permissions/resource_permissions.go` and
`permissions/permission_definitions.go`:
- id `/<request object type>/<object id>` (`/clusters/0101-…`), `object_type` `cluster`,
  `cluster-policy` or `instance-pool`;
- create and update are one `PUT /api/2.0/permissions/<type>/<id>` (SDK `PermissionsAPI.set`:
  the whole ACL is replaced, so entries made outside Terraform disappear). Before it
  (`validate`): the `admins` group cannot be configured, and the caller may not give itself a
  level below a managing one (`cannot remove management permissions for the current user`).
  For clusters and pools the caller is added as CAN_MANAGE when the list leaves it out
  (`update.AddCurrentUserAsManage`);
- read keeps direct (not inherited) entries, leaves out `admins` and the caller unless the
  configuration names it (`prepareResponse`); user and service principal names lower-cased;
- delete PUTs what is left once every entry but the direct `admins` ones is dropped, plus the
  caller as CAN_MANAGE for clusters and pools (`prepareForDelete`); for a gone object, nothing.
Other object types (jobs, notebooks, …) validate, and answer that the sandbox does not emulate
them for that type.
"""

from __future__ import annotations

from typing import Any

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State, UpdateContext
from tf.schema import Schema

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import StandInResource, reports_errors
from provisioner.sandbox.provider.snapshot import resource_schema

# field -> (request object type, object type, levels, {managing levels}, caller added as CAN_MANAGE)
MAPPINGS: dict[str, tuple[str, str, tuple[str, ...], frozenset[str], bool]] = {
    "cluster_id": (
        "clusters",
        "cluster",
        ("CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"),
        frozenset({"CAN_MANAGE"}),
        True,
    ),
    "cluster_policy_id": ("cluster-policies", "cluster-policy", ("CAN_USE",), frozenset({"CAN_USE"}), False),
    "instance_pool_id": (
        "instance-pools",
        "instance-pool",
        ("CAN_ATTACH_TO", "CAN_MANAGE"),
        frozenset({"CAN_MANAGE"}),
        True,
    ),
}
PRINCIPALS = ("user_name", "group_name", "service_principal_name")


class PermissionsError(Exception):
    verbatim = True


class Permissions(StandInResource):
    @classmethod
    def get_name(cls) -> str:
        return "permissions"

    @classmethod
    def get_schema(cls) -> Schema:
        # Every object field forces a new resource (the provider's schema customisation).
        fields = [a.name for a in resource_schema("databricks_permissions").attributes]
        return resource_schema(
            "databricks_permissions", force_new=[f for f in fields if f not in ("id", "object_type")]
        )

    def _mapping(self, state: State) -> tuple[str, str, tuple[str, str, tuple[str, ...], frozenset[str], bool]]:
        for field, mapping in MAPPINGS.items():
            if state.get(field):
                return field, str(state[field]), mapping
        set_fields = [
            a.name for a in self.get_schema().attributes if a.name not in ("id", "object_type") and state.get(a.name)
        ]
        if set_fields:
            raise PermissionsError(
                f"databricks_permissions with {set_fields[0]} is valid for the real provider but not emulated by "
                "the sandbox (it emulates cluster_id, cluster_policy_id and instance_pool_id)"
            )
        raise PermissionsError("at least one type of resource identifier must be set")

    def _me(self) -> str:
        return str(self.provider.client().current_user_name())

    def _put(self, path: str, acl: list[dict[str, Any]]) -> None:
        self.provider.client().api("PUT", f"/api/2.0/permissions/{path}", body={"access_control_list": acl})

    def _set(self, state: State) -> State:
        field, object_id, (request_type, object_type, levels, managing, add_me) = self._mapping(state)
        me = self._me()
        acl = []
        for entry in state.get("access_control") or []:
            level = entry.get("permission_level")
            if entry.get("group_name") == "admins":
                raise PermissionsError(f"it is not possible to modify admin permissions for {object_type} resources")
            who = [str(entry[p]) for p in PRINCIPALS if entry.get(p)]
            if len(who) != 1:
                raise PermissionsError("exactly one of user_name, group_name or service_principal_name must be set")
            if level not in levels:
                allowed = ", ".join(levels)
                raise PermissionsError(f"permission_level {level} is not supported with {field}; allowed: {allowed}")
            if who[0].lower() == me.lower() and entry.get("group_name") is None and level not in managing:
                raise PermissionsError(
                    f"cannot remove management permissions for the current user for {object_type}, "
                    f"allowed levels: {', '.join(sorted(managing))}"
                )
            acl.append({p: entry[p] for p in (*PRINCIPALS, "permission_level") if entry.get(p)})
        if add_me and not any(
            str(e.get("user_name", "")).lower() == me.lower()
            or str(e.get("service_principal_name", "")).lower() == me.lower()
            for e in acl
        ):
            acl.append({"user_name": me, "permission_level": "CAN_MANAGE"})
        self._put(f"{request_type}/{object_id}", acl)
        state = {**state, "id": f"/{request_type}/{object_id}", "object_type": object_type}
        return self._read(state) or state

    @reports_errors("cannot create permissions")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        return self._set(planned)

    @reports_errors("cannot update permissions")
    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return self._set(planned)

    @reports_errors("cannot read permissions")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current)

    def _read(self, current: State) -> State | None:
        path = str(current.get("id") or "").lstrip("/")
        try:
            answer = self.provider.client().api("GET", f"/api/2.0/permissions/{path}")
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        me = self._me().lower()
        configured = {
            str(e.get(p, "")).lower()
            for e in current.get("access_control") or []
            for p in ("user_name", "service_principal_name")
        }
        entries = []
        for entry in answer.get("access_control_list") or []:
            user = str(entry.get("user_name") or "").lower()
            sp = str(entry.get("service_principal_name") or "").lower()
            if me in (user, sp) and me not in configured:
                continue
            if entry.get("group_name") == "admins":
                continue
            for permission in entry.get("all_permissions") or []:
                if permission.get("inherited"):
                    continue
                entries.append(
                    {
                        "user_name": user or None,
                        "group_name": entry.get("group_name") or None,
                        "service_principal_name": sp or None,
                        "permission_level": permission.get("permission_level"),
                    }
                )
        state = self.blank_state()
        request_type, _, object_id = path.rpartition("/")
        field = next(f for f, m in MAPPINGS.items() if m[0] == request_type)
        state.update(
            {k: v for k, v in current.items() if k in state},
            id=f"/{path}",
            object_type=answer.get("object_type"),
            access_control=entries,
        )
        state[field] = object_id
        return state

    @reports_errors("cannot delete permissions")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        path = str(current.get("id") or "").lstrip("/")
        request_type = path.rpartition("/")[0]
        mapping = next(m for m in MAPPINGS.values() if m[0] == request_type)
        try:
            answer = self.provider.client().api("GET", f"/api/2.0/permissions/{path}")
        except ApiError as exc:
            if exc.not_found:
                return  # the object is gone: nothing to reset
            raise
        acl = [
            {"group_name": "admins", "permission_level": p["permission_level"]}
            for e in answer.get("access_control_list") or []
            if e.get("group_name") == "admins"
            for p in e.get("all_permissions") or []
            if not p.get("inherited")
        ][:1]
        if mapping[4]:
            acl.append({"user_name": self._me(), "permission_level": "CAN_MANAGE"})
        self._put(path, acl)

    @reports_errors("cannot import permissions")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        return self._read({"id": id})
