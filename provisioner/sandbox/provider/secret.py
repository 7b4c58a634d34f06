"""`databricks_secret`: one secret in a scope. No update: a new value is destroy-then-create.

The value is never read back (Databricks does not return it), so a change made outside
Terraform is invisible. `config_reference` is the `{{secrets/<scope>/<key>}}` string a
cluster's spark_conf uses; Databricks resolves it only when the cluster (re)starts.
"""

from __future__ import annotations

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State
from tf.schema import Schema

from provisioner.sandbox.provider.framework import reports_errors
from provisioner.sandbox.provider.scoped import ID_SEPARATOR, InScope, missing_is_done, missing_is_none
from provisioner.sandbox.provider.snapshot import resource_schema


class SecretResource(InScope):
    NAME = "key"

    @classmethod
    def get_name(cls) -> str:
        return "secret"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_secret", force_new=("scope", "key", "string_value"))

    def validate(self, diags, type_name, config):  # type: ignore[no-untyped-def]
        super().validate(diags, type_name, config)
        if config.get("string_value") == "":
            diags.add_error("string_value must not be empty", path=["string_value"])

    @reports_errors("cannot create secret")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        from provisioner.secret import Secret

        self.provider.client().put_secret(planned["scope"], planned["key"], Secret(planned["string_value"]))
        return self._read(planned["scope"], planned["key"], planned)

    @reports_errors("cannot read secret")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current["scope"], current["key"], current)

    @reports_errors("cannot delete secret")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        missing_is_done(lambda: self.provider.client().delete_secret(current["scope"], current["key"]))

    @reports_errors("cannot import secret")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        scope, sep, key = id.partition(ID_SEPARATOR)
        state = self._read(scope, key, {}) if sep and scope and key else None
        if state is None:
            ctx.diagnostics.add_error("cannot import secret", f"no secret {id!r} (expected <scope>|||<key>)")
        return state

    def _read(self, scope: str, key: str, prior: State) -> State | None:
        secrets = missing_is_none(lambda: self.provider.client().list_secrets(scope))
        listed = {s["key"]: s for s in secrets or []}
        if key not in listed:
            return None
        return {
            "id": self.pair_id(scope, key),
            "scope": scope,
            "key": key,
            "string_value": prior.get("string_value"),  # never returned by the API
            "config_reference": f"{{{{secrets/{scope}/{key}}}}}",
            "last_updated_timestamp": listed[key].get("last_updated_timestamp"),
        }
