"""`databricks_cluster`: an all-purpose cluster, behaving like the real provider's.

Copied from terraform-provider-databricks `clusters/resource_cluster.go`:
- create: `clusters/create`, then `clusters/pin` when `is_pinned` (before waiting), then wait
  for RUNNING unless `no_wait`; a cluster that ends TERMINATED/ERROR is deleted (as below)
  and the create fails. A failed pin keeps the cluster: `resourceClusterCreate` sets the id
  (`d.SetId`, `cluster_id`) before `PinByClusterId` and returns the pin's error with it, so
  SDKv2 answers the object beside the error (terraform-plugin-sdk `helper/schema/
  grpc_provider.go` ApplyResourceChange: a state with an id is returned) and Terraform
  records it tainted — the next apply replaces it.
- update: only `num_workers`/`autoscale` changed on a RUNNING cluster -> `clusters/resize`;
  anything else -> `clusters/edit` with the full spec, *without* waiting for the restart.
- read: `clusters/get`, where INVALID_STATE or "does not exist" means gone (the cluster
  leaves the state and the next plan recreates it; `wrapMissingClusterError` in
  `clusters/clusters_api.go`); `is_pinned` is not a get field, so it comes from
  `clusters/list` filtered to pinned clusters (`setPinnedStatus`); keys the server added to
  `spark_conf` come back, so they show as a diff on every plan — except the diff-suppressed
  ones (`SparkConfDiffSuppressFunc`, see cluster_maps.py).
- delete: `clusters/permanent-delete`; already gone is fine; "unpin the cluster first" ->
  `clusters/unpin`, then permanent-delete again (`resourceClusterDelete`).
"""

from __future__ import annotations

import time
from typing import Any

from tf.iface import (
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    State,
    UpdateContext,
)
from tf.schema import Schema
from tf.types import Unknown

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.cluster_maps import MAP_FIELDS, suppress_spark_conf_diff
from provisioner.sandbox.provider.framework import StandInResource, describe_error, reports_errors
from provisioner.sandbox.provider.library import library_id, poll_seconds, wait_installed
from provisioner.sandbox.provider.snapshot import resource_schema
from provisioner.sandbox.provider.structs import api_value, from_api, state_value, to_api

# The resource's attributes and blocks that are not Clusters API fields: the provider's own
# (`is_pinned`, `no_wait`, `library` — installed through the Libraries API —, `timeouts`,
# `provider_config`) and what it derives (`url`). Everything else in the schema is sent to
# clusters/create|edit as it is (`common.DataToStructPointer` over `compute.ClusterSpec`) and
# read back from clusters/get (`common.StructToData`).
NOT_API = frozenset({"id", "url", "is_pinned", "no_wait", "library", "timeouts", "provider_config"})
RESIZE_FIELDS = frozenset({"num_workers", "autoscale"})
CLOUD_ATTRIBUTES = ("aws_attributes", "azure_attributes", "gcp_attributes")
# Optional attributes the server fills in when unset; the real provider suppresses the
# diff for them, so a null config is kept null instead of taking the server's value.
SERVER_DEFAULTED = ("data_security_mode", "runtime_engine")

CREATE_TIMEOUT = 30 * 60.0
EDIT_RETRY_TIMEOUT = 15 * 60.0  # the real provider retries INVALID_STATE edits this long


def _keep_server_fields(current: Any, planned: Any) -> Any:
    """A one-element block whose unset fields (or whole absence) take the state's values."""
    if not current:
        return planned
    if not planned:
        return current
    merged = dict(planned[0])
    for key, value in current[0].items():
        if merged.get(key) is None:
            merged[key] = value
    return [merged]


def _libraries(state: State) -> list[dict[str, Any]]:
    """The `library` blocks as the Libraries API's objects."""
    block = next(b for b in Cluster.get_schema().block_types if b.type_name == "library")
    value = api_value(block, state.get("library"))
    return value if isinstance(value, list) else []


def _spec(state: State) -> dict[str, Any]:
    """The clusters/create|edit body for a planned state (unset fields left out)."""
    spec = to_api(Cluster.get_schema(), state, skip=NOT_API)
    if spec.get("autoscale"):
        spec.pop("num_workers", None)  # the API accepts exactly one of the two
    return spec


NUM_WORKERS_ERROR = (
    "NumWorkers could be 0 only for SingleNode clusters. "
    "See https://docs.databricks.com/clusters/single-node.html for more details"
)


def _created_only(planned: State, cluster_id: str) -> State:
    """What SDKv2's `data.State()` holds after a create that failed past `d.SetId`: the planned
    values and the id; computed values still unknown are left out (null)."""
    state: State = _known(planned)
    return {**state, "id": cluster_id, "cluster_id": cluster_id}


def _known(value: Any) -> Any:
    if value is Unknown:
        return None
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return value


def _validate(spec: dict[str, Any]) -> str | None:
    """The provider's `Validate()` (clusters/resource_cluster.go): 0 workers only for single node."""
    if spec.get("num_workers") or spec.get("autoscale"):
        return None
    if spec.get("kind") == "CLASSIC_PREVIEW" and spec.get("is_single_node"):
        return None
    conf = spec.get("spark_conf") or {}
    tags = spec.get("custom_tags") or {}
    legacy = (
        conf.get("spark.databricks.cluster.profile") == "singleNode"
        and str(conf.get("spark.master", "")).startswith("local")
        and tags.get("ResourceClass") == "SingleNode"
    )
    return None if legacy else NUM_WORKERS_ERROR


class Cluster(StandInResource):
    DEFAULTS = {"autotermination_minutes": 60, "num_workers": 0, "is_pinned": False, "no_wait": False}

    @classmethod
    def get_name(cls) -> str:
        return "cluster"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_cluster")

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State:
        planned = super().plan(ctx, current, planned)
        # SDKv2 does not tell an empty map from an unset one: `spark_conf = {}` against a
        # state without spark_conf is no change.
        for name in MAP_FIELDS:
            if current is not None and not planned.get(name) and not current.get(name):
                planned[name] = current.get(name)
        # SetSuppressDiff (resource_cluster.go): an unset value is no change from what the
        # server chose — e.g. right after an import, which records the server's value.
        for name in SERVER_DEFAULTED:
            if current is not None and planned.get(name) is None and current.get(name) is not None:
                planned[name] = current[name]
        if current is not None:
            planned["spark_conf"] = suppress_spark_conf_diff(current.get("spark_conf"), planned.get("spark_conf"))
            # aws/azure/gcp_attributes are SetConditionalSuppressDiff(suppressUnlessBlockDeleted)
            # (resource_cluster.go; v1.99 has no clear_cloud_attributes_on_remove, so always):
            # what the configuration leaves out — the block, or a field of it — is no change
            # from what the server filled in (a policy's defaults, the cloud's own).
            for name in CLOUD_ATTRIBUTES:
                planned[name] = _keep_server_fields(current.get(name), planned.get(name))
        return planned

    @reports_errors("cannot create cluster")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        client = self.provider.client()
        problem = _validate(_spec(planned))
        if problem:
            ctx.diagnostics.add_error("cannot create cluster", problem)
            return None
        cluster_id = client.create_cluster(_spec(planned))
        if planned.get("is_pinned"):
            try:
                client.pin_cluster(cluster_id)
            except Exception as exc:
                ctx.diagnostics.add_error("cannot create cluster", describe_error(exc))
                return _created_only(planned, cluster_id)
        if not planned.get("no_wait"):
            info = client.wait_for_state(cluster_id, {"RUNNING"}, CREATE_TIMEOUT, poll_seconds())
            if info.get("state") != "RUNNING":
                self._permanent_delete(cluster_id)
                ctx.diagnostics.add_error(
                    "cannot create cluster",
                    f"cluster {cluster_id} ended {info.get('state')}: {info.get('state_message', '')}; "
                    "it was permanently deleted",
                )
                return None
        libraries = _libraries(planned)
        if libraries:
            # resourceClusterCreate: install, then wait for them unless no_wait.
            client.api("POST", "/api/2.0/libraries/install", body={"cluster_id": cluster_id, "libraries": libraries})
            if not planned.get("no_wait"):
                wait_installed(client, cluster_id, libraries, poll_seconds())
        return self._read(cluster_id, planned)

    @reports_errors("cannot read cluster")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(current["cluster_id"] or current["id"], current)

    @reports_errors("cannot update cluster")
    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        client = self.provider.client()
        cluster_id = current["cluster_id"]
        before, after = _spec(current), _spec(planned)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        problem = _validate(_spec(planned)) if changed else None
        if problem:
            ctx.diagnostics.add_error("cannot update cluster", problem)
            return None
        if changed:
            running = client.get_cluster(cluster_id).get("state") == "RUNNING"
            if changed <= RESIZE_FIELDS and running:
                spec = _spec(planned)
                client.resize_cluster(cluster_id, num_workers=spec.get("num_workers"), autoscale=spec.get("autoscale"))
            else:
                self._edit(cluster_id, _spec(planned))
        if bool(current.get("is_pinned")) != bool(planned.get("is_pinned")):
            (client.pin_cluster if planned.get("is_pinned") else client.unpin_cluster)(cluster_id)
        # resourceClusterUpdate: libraries removed from the config are uninstalled, new ones installed.
        before_libs = {library_id(x): x for x in _libraries(current)}
        after_libs = {library_id(x): x for x in _libraries(planned)}
        gone = [x for k, x in before_libs.items() if k not in after_libs]
        new = [x for k, x in after_libs.items() if k not in before_libs]
        if gone:
            client.api("POST", "/api/2.0/libraries/uninstall", body={"cluster_id": cluster_id, "libraries": gone})
        if new:
            client.api("POST", "/api/2.0/libraries/install", body={"cluster_id": cluster_id, "libraries": new})
        # No waiting: the cluster may still be RESTARTING with its old config (as for real).
        return self._read(cluster_id, planned)

    @reports_errors("cannot delete cluster")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        self._permanent_delete(current["cluster_id"])

    def _permanent_delete(self, cluster_id: str) -> None:
        client = self.provider.client()
        try:
            client.permanent_delete_cluster(cluster_id)
        except ApiError as exc:
            if exc.not_found:
                return
            if "unpin the cluster first" not in exc.message:
                raise
            client.unpin_cluster(cluster_id)
            client.permanent_delete_cluster(cluster_id)

    @reports_errors("cannot import cluster")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        state = self._read(id, self.DEFAULTS, importing=True)
        if state is None:
            ctx.diagnostics.add_error("cannot import cluster", f"cluster {id} does not exist")
        return state

    def _edit(self, cluster_id: str, spec: dict[str, Any]) -> None:
        deadline = time.monotonic() + EDIT_RETRY_TIMEOUT
        while True:
            try:
                self.provider.client().edit_cluster(cluster_id, spec)
                return
            except ApiError as exc:
                # PENDING/RESIZING/...: the API refuses edits until the cluster settles.
                if exc.error_code != "INVALID_STATE" or time.monotonic() > deadline:
                    raise
                time.sleep(poll_seconds())

    def _read(self, cluster_id: str, prior: State, importing: bool = False) -> State | None:
        """The state for a cluster as the API reports it; None when it no longer exists."""
        try:
            info = self.provider.client().get_cluster(cluster_id)
        except ApiError as exc:
            if exc.not_found or exc.error_code == "INVALID_STATE":
                return None
            raise
        pinned = any(c.get("cluster_id") == cluster_id for c in self.provider.client().list_clusters(pinned_only=True))
        state = from_api(self.get_schema(), info, skip=NOT_API)
        for name in MAP_FIELDS:
            state[name] = info.get(name) or None  # SDKv2 stores an empty map as null
        for name in SERVER_DEFAULTED:
            # An import has no config yet: it records what the cluster really has.
            if prior.get(name) is None and not importing:
                state[name] = None
        state["num_workers"] = info.get("num_workers", 0)
        state.update(
            id=info["cluster_id"],
            cluster_id=info["cluster_id"],
            default_tags=info.get("default_tags") or {},
            state=info.get("state"),
            url=f"{self.provider.client().host}/#setting/clusters/{info['cluster_id']}/configuration",
            is_pinned=pinned,
            no_wait=bool(prior.get("no_wait")),  # not an API field: kept from config/state
            # Not in ClusterDetails, so the real provider's StructToData never overwrites it
            # (`common/reflect_resource.go`): the configured value stays in state.
            apply_policy_default_values=prior.get("apply_policy_default_values"),
            timeouts=prior.get("timeouts"),
            provider_config=prior.get("provider_config") or [],
            library=self._read_libraries(cluster_id, prior),
        )
        return state

    def _read_libraries(self, cluster_id: str, prior: State) -> list[dict[str, Any]]:
        """resourceClusterRead: without `library` blocks in the config, installed libraries are
        not read (so ones added outside Terraform cause no diff); with them, every library the
        cluster has (`libraries/cluster-status`), as blocks."""
        if not prior.get("library"):
            return []
        answer = self.provider.client().api(
            "GET", "/api/2.0/libraries/cluster-status", query={"cluster_id": cluster_id}
        )
        block = next(b for b in self.get_schema().block_types if b.type_name == "library")
        return [
            state_value(block, status["library"])[0]
            for status in answer.get("library_statuses") or []
            if status.get("status") != "UNINSTALL_ON_RESTART"
        ]
