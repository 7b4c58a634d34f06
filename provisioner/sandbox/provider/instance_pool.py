"""`databricks_instance_pool`, as terraform-provider-databricks `pools/resource_instance_pool.go`:
create `instance-pools/create` with the configured fields (DataToStructPointer), read
`instance-pools/get` (StructToData), update `instance-pools/edit` with the whole spec, delete
`instance-pools/delete`. ForceNew: `node_type_id`, the cloud attributes, `disk_spec`,
`enable_elastic_disk`, `preloaded_spark_versions` and `preloaded_docker_image` (the
`force_new` struct tags and schema customisations of that file).
"""

from __future__ import annotations

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State, UpdateContext
from tf.schema import Schema

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import StandInResource, reports_errors
from provisioner.sandbox.provider.snapshot import resource_schema
from provisioner.sandbox.provider.structs import from_api, to_api

_FORCE_NEW = ("node_type_id", "enable_elastic_disk", "preloaded_spark_versions")
_NOT_API = ("id", "instance_pool_id")


class InstancePool(StandInResource):
    @classmethod
    def get_name(cls) -> str:
        return "instance_pool"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_instance_pool", force_new=_FORCE_NEW)

    @reports_errors("cannot create instance pool")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        body = to_api(self.get_schema(), planned, skip=_NOT_API)
        pool_id = self.provider.client().api("POST", "/api/2.0/instance-pools/create", body=body)["instance_pool_id"]
        return self._read(str(pool_id), planned)

    @reports_errors("cannot read instance pool")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(str(current["id"]), current)

    @reports_errors("cannot update instance pool")
    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        body = {**to_api(self.get_schema(), planned, skip=_NOT_API), "instance_pool_id": current["id"]}
        self.provider.client().api("POST", "/api/2.0/instance-pools/edit", body=body)
        return self._read(str(current["id"]), planned)

    @reports_errors("cannot delete instance pool")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        self.provider.client().api("POST", "/api/2.0/instance-pools/delete", body={"instance_pool_id": current["id"]})

    @reports_errors("cannot import instance pool")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        return self._read(id, {})

    def _read(self, pool_id: str, prior: State) -> State | None:
        try:
            answer = self.provider.client().api(
                "GET", "/api/2.0/instance-pools/get", query={"instance_pool_id": pool_id}
            )
        except ApiError as exc:
            if exc.not_found or "does not exist" in exc.message:
                return None
            raise
        state = from_api(self.get_schema(), answer)
        # Optional, not computed: what the server fills in stays what the configuration said.
        for name in ("custom_tags", "enable_elastic_disk", "min_idle_instances"):
            if prior.get(name) is None:
                state[name] = None
        state.update(id=pool_id, instance_pool_id=pool_id)
        return state
