"""`databricks_secret_acl`: one principal's permission on a secret scope.

As terraform-provider-databricks `secrets/resource_secret_acl.go`: `scope`, `principal` and
`permission` are required and force a new resource; the id is `<scope>|||<principal>`;
create is `secrets/acls/put`, read `secrets/acls/get` (a missing ACL or scope leaves the
state), delete `secrets/acls/delete` (already gone is fine) — except a MANAGE grant to the
caller itself, which the provider never deletes so nobody locks themselves out.
"""

from __future__ import annotations

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State
from tf.schema import Schema

from provisioner.sandbox.provider.framework import reports_errors
from provisioner.sandbox.provider.scoped import ID_SEPARATOR, InScope, missing_is_done, missing_is_none
from provisioner.sandbox.provider.snapshot import resource_schema

PERMISSIONS = ("READ", "WRITE", "MANAGE")


class SecretAcl(InScope):
    NAME = "principal"

    @classmethod
    def get_name(cls) -> str:
        return "secret_acl"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_secret_acl", force_new=("scope", "principal", "permission"))

    @reports_errors("cannot create secret ACL")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        if planned["permission"] not in PERMISSIONS:
            ctx.diagnostics.add_error("cannot create secret ACL", f"permission must be one of {', '.join(PERMISSIONS)}")
            return None
        self.provider.client().put_scope_acl(planned["scope"], planned["principal"], planned["permission"])
        return {**planned, "id": self.pair_id(planned["scope"], planned["principal"])}

    @reports_errors("cannot read secret ACL")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current["scope"], current["principal"])

    @reports_errors("cannot delete secret ACL")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        client = self.provider.client()
        if current["permission"] == "MANAGE" and current["principal"] == client.current_user_name():
            return
        missing_is_done(lambda: client.delete_scope_acl(current["scope"], current["principal"]))

    @reports_errors("cannot import secret ACL")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        scope, _, principal = id.partition(ID_SEPARATOR)
        state = self._read(scope, principal)
        if state is None:
            ctx.diagnostics.add_error("cannot import secret ACL", f"no ACL for {principal} on scope {scope}")
        return state

    def _read(self, scope: str, principal: str) -> State | None:
        permission = missing_is_none(lambda: self.provider.client().get_scope_acl(scope, principal))
        if permission is None:
            return None
        state = self.blank_state()
        state.update(id=self.pair_id(scope, principal), scope=scope, principal=principal, permission=permission)
        return state
