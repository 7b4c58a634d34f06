"""`databricks_secret_acl`: one principal's permission on a secret scope.

As terraform-provider-databricks `secrets/resource_secret_acl.go`: `scope`, `principal` and
`permission` are required and force a new resource; the id is `<scope>|||<principal>`;
create is `secrets/acls/put`, read `secrets/acls/get` (a missing ACL or scope leaves the
state), delete `secrets/acls/delete` (already gone is fine) — except a MANAGE grant to the
caller itself, which the provider never deletes so nobody locks themselves out.
"""

from __future__ import annotations

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State, UpdateContext
from tf.schema import Attribute, Schema
from tf.types import String

from provisioner.sandbox.provider.framework import StandInResource, reports_errors

SEPARATOR = "|||"
PERMISSIONS = ("READ", "WRITE", "MANAGE")


class SecretAcl(StandInResource):
    @classmethod
    def get_name(cls) -> str:
        return "secret_acl"

    @classmethod
    def get_schema(cls) -> Schema:
        return Schema(
            attributes=[
                Attribute("id", String(), optional=True, computed=True),
                Attribute("scope", String(), required=True, requires_replace=True),
                Attribute("principal", String(), required=True, requires_replace=True),
                Attribute("permission", String(), required=True, requires_replace=True),
            ]
        )

    @reports_errors("cannot create secret ACL")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        if planned["permission"] not in PERMISSIONS:
            ctx.diagnostics.add_error("cannot create secret ACL", f"permission must be one of {', '.join(PERMISSIONS)}")
            return None
        self.provider.client().put_scope_acl(planned["scope"], planned["principal"], planned["permission"])
        return {**planned, "id": f"{planned['scope']}{SEPARATOR}{planned['principal']}"}

    @reports_errors("cannot read secret ACL")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current["scope"], current["principal"])

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return planned  # unreachable: every configurable attribute forces replacement

    @reports_errors("cannot delete secret ACL")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        from provisioner.databricks.workspace import WorkspaceError

        client = self.provider.client()
        if current["permission"] == "MANAGE" and current["principal"] == client.current_user_name():
            return
        try:
            client.delete_scope_acl(current["scope"], current["principal"])
        except WorkspaceError as exc:
            if not exc.not_found:
                raise

    @reports_errors("cannot import secret ACL")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        scope, _, principal = id.partition(SEPARATOR)
        state = self._read(scope, principal)
        if state is None:
            ctx.diagnostics.add_error("cannot import secret ACL", f"no ACL for {principal} on scope {scope}")
        return state

    def _read(self, scope: str, principal: str) -> State | None:
        from provisioner.databricks.workspace import WorkspaceError

        try:
            permission = self.provider.client().get_scope_acl(scope, principal)
        except WorkspaceError as exc:
            if exc.not_found:
                return None
            raise
        if permission is None:
            return None
        state = self.blank_state()
        state.update(id=f"{scope}{SEPARATOR}{principal}", scope=scope, principal=principal, permission=permission)
        return state
