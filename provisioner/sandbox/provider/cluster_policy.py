"""`databricks_cluster_policy`, as terraform-provider-databricks `policies/resource_cluster_policy.go`:
create is `policies/clusters/create` with the configured fields (`compute.CreatePolicy`),
read `policies/clusters/get` (StructToData: every field from the answer, `policy_id` too),
update `policies/clusters/edit` (the definition dropped when a policy family is used), delete
`policies/clusters/delete`. `definition` is Computed (a family's definition comes back) and a
change of whitespace only is no change (`common.SuppressDiffWhitespaceChange`, also for
`policy_family_definition_overrides`). The provider's special case for built-in policy families
(creating one edits the workspace's existing policy of that name) is not emulated: such a
policy is created like any other.
"""

from __future__ import annotations

import json
from typing import Any

from tf.iface import CreateContext, DeleteContext, ImportContext, PlanContext, ReadContext, State, UpdateContext
from tf.schema import Schema

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import StandInResource, reports_errors
from provisioner.sandbox.provider.snapshot import resource_schema
from provisioner.sandbox.provider.structs import from_api, to_api

_BASE = "/api/2.0/policies/clusters"
_WHITESPACE_INSENSITIVE = ("definition", "policy_family_definition_overrides")


def _same_json(a: Any, b: Any) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except (TypeError, ValueError):
        return "".join(str(a).split()) == "".join(str(b).split())


class ClusterPolicy(StandInResource):
    @classmethod
    def get_name(cls) -> str:
        return "cluster_policy"

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema("databricks_cluster_policy")

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State:
        planned = super().plan(ctx, current, planned)
        for name in _WHITESPACE_INSENSITIVE:
            if (
                current is not None
                and current.get(name)
                and planned.get(name)
                and _same_json(current[name], planned[name])
            ):
                planned[name] = current[name]
        return planned

    def _body(self, state: State) -> dict[str, Any]:
        return to_api(self.get_schema(), state, skip=("id", "policy_id"))

    @reports_errors("cannot create cluster policy")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        policy_id = self.provider.client().api("POST", f"{_BASE}/create", body=self._body(planned))["policy_id"]
        return self._read(str(policy_id), planned)

    @reports_errors("cannot read cluster policy")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._read(str(current["id"]), current)

    @reports_errors("cannot update cluster policy")
    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        body = {**self._body(planned), "policy_id": current["id"]}
        if body.get("policy_family_id"):
            body.pop("definition", None)
        self.provider.client().api("POST", f"{_BASE}/edit", body=body)
        return self._read(str(current["id"]), planned)

    @reports_errors("cannot delete cluster policy")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        self.provider.client().api("POST", f"{_BASE}/delete", body={"policy_id": current["id"]})

    @reports_errors("cannot import cluster policy")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        return self._read(id, {})

    def _read(self, policy_id: str, prior: State) -> State | None:
        try:
            answer = self.provider.client().api("GET", f"{_BASE}/get", query={"policy_id": policy_id})
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        state = from_api(self.get_schema(), answer)
        for name in _WHITESPACE_INSENSITIVE:
            if prior.get(name) and state.get(name) and _same_json(prior[name], state[name]):
                state[name] = prior[name]
        state.update(id=policy_id, policy_id=policy_id)
        return state
