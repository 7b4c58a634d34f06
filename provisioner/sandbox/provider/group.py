"""`databricks_group` and `databricks_group_member` over the workspace's SCIM Groups API.

terraform-provider-databricks `scim/resource_group.go`: create POSTs `displayName`,
`externalId` and the entitlements (`allow_cluster_create` → `allow-cluster-create`, …); with
`force = true` an existing group of that name is adopted instead of failing ("Group with name
X already exists."); read GETs it (entitlements back to booleans, `url` the group's page,
`acl_principal_id` `groups/<name>`); update PUTs the new name and entitlements; delete DELETEs.
`scim/resource_group_member.go`: id `<group_id>|<member_id>`; create PATCHes
`add members`, delete PATCHes `remove members[value eq "<id>"]`, read looks for the member
in the group's `members` (gone → removed from state). Every attribute of a member forces a
new one.
"""

from __future__ import annotations

from typing import Any

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State, UpdateContext
from tf.schema import Schema

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import StandInResource, reports_errors
from provisioner.sandbox.provider.scoped import ReplacedOnChange
from provisioner.sandbox.provider.snapshot import resource_schema

GROUPS = "/api/2.0/preview/scim/v2/Groups"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTITLEMENTS = {
    "allow_cluster_create": "allow-cluster-create",
    "allow_instance_pool_create": "allow-instance-pool-create",
    "databricks_sql_access": "databricks-sql-access",
    "workspace_access": "workspace-access",
    "workspace_consume": "workspace-consume",
}


def _entitlements(state: State) -> list[dict[str, str]]:
    return [{"value": v} for k, v in ENTITLEMENTS.items() if state.get(k)]


class Group(StandInResource):
    @classmethod
    def get_name(cls) -> str:
        return "group"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_group", force_new=("external_id",))

    def _body(self, state: State) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": state["display_name"]}
        if state.get("external_id"):
            body["externalId"] = state["external_id"]
        if _entitlements(state):
            body["entitlements"] = _entitlements(state)
        return body

    @reports_errors("cannot create group")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        client = self.provider.client()
        try:
            group_id = client.api("POST", GROUPS, body=self._body(planned))["id"]
        except ApiError as exc:
            if not planned.get("force") or "already exists" not in exc.message:
                raise
            name = planned["display_name"]
            found = client.api("GET", GROUPS, query={"filter": f'displayName eq "{name}"'}).get("Resources") or []
            group_id = found[0]["id"]
            client.api("PUT", f"{GROUPS}/{group_id}", body=self._body(planned))
        return self._read(str(group_id), planned)

    @reports_errors("cannot read group")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(str(current["id"]), current)

    @reports_errors("cannot update group")
    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        self.provider.client().api("PUT", f"{GROUPS}/{current['id']}", body=self._body(planned))
        return self._read(str(current["id"]), planned)

    @reports_errors("cannot delete group")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        try:
            self.provider.client().api("DELETE", f"{GROUPS}/{current['id']}")
        except ApiError as exc:
            if not exc.not_found:
                raise

    @reports_errors("cannot import group")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        return self._read(id, {})

    def _read(self, group_id: str, prior: State) -> State | None:
        client = self.provider.client()
        try:
            group = client.api(
                "GET", f"{GROUPS}/{group_id}", query={"attributes": "displayName,externalId,entitlements"}
            )
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        have = {e.get("value") for e in group.get("entitlements") or []}
        state = self.blank_state()
        state.update(
            id=group_id,
            display_name=group.get("displayName"),
            external_id=group.get("externalId"),
            url=f"{client.host}/#setting/accounts/groups/{group_id}",
            acl_principal_id=f"groups/{group.get('displayName')}",
            force=prior.get("force"),
            **{
                k: (True if v in have else (False if prior.get(k) is not None else None))
                for k, v in ENTITLEMENTS.items()
            },
        )
        return state


class GroupMember(ReplacedOnChange):
    @classmethod
    def get_name(cls) -> str:
        return "group_member"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_group_member", force_new=("group_id", "member_id"))

    def _patch(self, group_id: str, operation: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_SCHEMA], "Operations": [operation]}
        self.provider.client().api("PATCH", f"{GROUPS}/{group_id}", body=body)

    @reports_errors("cannot create group member")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        self._patch(planned["group_id"], {"op": "add", "path": "members", "value": [{"value": planned["member_id"]}]})
        return {**planned, "id": f"{planned['group_id']}|{planned['member_id']}"}

    @reports_errors("cannot read group member")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        group_id, _, member_id = str(current["id"]).partition("|")
        try:
            group = self.provider.client().api("GET", f"{GROUPS}/{group_id}", query={"attributes": "members"})
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        members = {str(m.get("value")) for m in group.get("members") or []}
        return {"id": current["id"], "group_id": group_id, "member_id": member_id} if member_id in members else None

    @reports_errors("cannot delete group member")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        try:
            self._patch(current["group_id"], {"op": "remove", "path": f'members[value eq "{current["member_id"]}"]'})
        except ApiError as exc:
            if not exc.not_found:
                raise

    @reports_errors("cannot import group member")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        group_id, sep, member_id = id.partition("|")
        if not sep:
            ctx.diagnostics.add_error("cannot import group member", f"expected <group_id>|<member_id>, not {id!r}")
            return None
        return self.read(ctx, {"id": id, "group_id": group_id, "member_id": member_id})
