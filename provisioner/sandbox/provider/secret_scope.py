"""`databricks_secret_scope`: a Databricks-backed secret scope. Every change replaces it."""

from __future__ import annotations

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State
from tf.schema import Schema

from provisioner.sandbox.provider.framework import reports_errors
from provisioner.sandbox.provider.scoped import ReplacedOnChange, missing_is_done
from provisioner.sandbox.provider.snapshot import resource_schema


class SecretScope(ReplacedOnChange):
    @classmethod
    def get_name(cls) -> str:
        return "secret_scope"

    @classmethod
    def get_schema(cls) -> Schema:
        # Azure Key Vault-backed scopes (`keyvault_metadata`): accepted by the schema, refused at create.
        return resource_schema(
            "databricks_secret_scope", force_new=("name", "backend_type", "initial_manage_principal")
        )

    @reports_errors("cannot create secret scope")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        if planned.get("keyvault_metadata"):
            ctx.diagnostics.add_error("cannot create secret scope", "the sandbox has no Azure Key Vault")
            return None
        self.provider.client().create_scope(
            planned["name"], initial_manage_principal=planned.get("initial_manage_principal")
        )
        return self._read(planned["name"], planned)

    @reports_errors("cannot read secret scope")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current["name"] or current["id"], current)

    @reports_errors("cannot delete secret scope")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        missing_is_done(lambda: self.provider.client().delete_scope(current["name"]))

    @reports_errors("cannot import secret scope")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        state = self._read(id, {})
        if state is None:
            ctx.diagnostics.add_error("cannot import secret scope", f"scope {id} does not exist")
        return state

    def _read(self, name: str, prior: State) -> State | None:
        scopes = {s["name"]: s for s in self.provider.client().list_scopes()}
        if name not in scopes:
            return None
        state = self.blank_state()
        state.update(
            id=name,
            name=name,
            backend_type=scopes[name].get("backend_type"),
            # Not readable from the API: kept from the config.
            initial_manage_principal=prior.get("initial_manage_principal"),
            keyvault_metadata=prior.get("keyvault_metadata") or [],
        )
        return state
