"""Cluster policies: check a configured cluster against its policy, and render what the policy owns.

A cluster with `policy_id` gets, from the workspace, every value the policy *fixes* written
into it on create and edit (Databricks "Compute policy reference"; provider
`docs/resources/cluster.md`, issues #3653/#3985/#4982: those values then come back from
`clusters/get` and drift on every plan). So before rendering, each cluster's policy is read
(`GET /api/2.0/policies/clusters/get`) and:

- a configured value the policy does not allow is an error naming the cluster, the field and
  the rule — before Terraform runs, instead of a `clusters/create` refused mid-apply;
- a value the policy fixes for a field the config leaves out is rendered as if configured, so
  the plan shows no change for it and `rotate`'s "pending changes besides the token" check
  never sees one. README ("Cluster policies") argues this against
  `apply_policy_default_values` + `lifecycle { ignore_changes }`.

Only `fixed` values are applied, and `defaultValue`s of fields the config leaves out that the
provider would not send (they are rendered, so the plan shows them). Fields the templates do
not render (azure_attributes, init scripts, …) are left to the policy: the provider suppresses
their diffs or computes them. One exception needs the workspace's help: a *required* limited
attribute (not `isOptional`) that provision.yaml has no key for, with a `defaultValue` — say
`azure_attributes.availability`. Defaults reach a cluster made through the API only with
`apply_policy_default_values: true` (compute policy reference, "Default values"; provider
`docs/resources/cluster.md`), so such a cluster is rendered with it, and the run says so. The
provider keeps the attribute from the configuration (`clusters/get` does not return it and
`common/reflect_resource.go` `StructToData` only sets fields the answer has), so it never drifts.

Virtual attribute paths (compute policy reference, "Virtual attribute paths") are no request
fields: `cluster_type` is "all-purpose" for every cluster the tool makes; `dbus_per_hour`
limits the cluster's DBU cost, which Databricks computes from per-node-type DBU rates the tool
cannot read, so Databricks checks it at create and the tool does not call it unset.
`spark_version` values such as `auto:latest-lts` resolve against the workspace's runtimes
(provisioner/databricks/runtimes.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.databricks import runtimes
from provisioner.databricks.cluster_fields import BASIC_FIELDS, MAP_FIELDS
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import ClusterSpec, Environment
    from provisioner.databricks.workspace import WorkspaceClient

SCALAR_FIELDS = (
    *BASIC_FIELDS,
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "kind",
    "is_single_node",
    "use_ml_runtime",
)
# What the provider sends for an unset field (clusters/resource_cluster.go schema defaults).
PROVIDER_DEFAULTS: Mapping[str, Any] = {"autotermination_minutes": 60, "num_workers": 0}
VIRTUAL = {"cluster_type": "all-purpose"}
UNCHECKED_VIRTUAL = frozenset({"dbus_per_hour"})
# Limiting rule types: an attribute under one is required unless `isOptional`.
_LIMITING = frozenset({"fixed", "allowlist", "blocklist", "range", "regex"})


@dataclass(frozen=True)
class ClusterPolicy:
    policy_id: str
    name: str
    rules: Mapping[str, Mapping[str, Any]]
    # The workspace's runtimes, read only when a spark_version rule names a special value.
    runtimes: Sequence[Mapping[str, Any]] = field(default=())

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> ClusterPolicy:
        try:
            rules = json.loads(str(body.get("definition") or "{}"))
        except ValueError:
            rules = {}
        return cls(str(body.get("policy_id")), str(body.get("name") or ""), rules if isinstance(rules, dict) else {})

    def names_special_runtime(self) -> bool:
        rule = self.rules.get("spark_version") or {}
        return any(runtimes.is_special(v) for v in (rule.get("value"), *rule.get("values", [])))


class PolicyConflict(ProvisionError):
    """A configured cluster that its cluster policy would refuse."""


def fetch_policies(client: WorkspaceClient, env: Environment) -> dict[str, ClusterPolicy]:
    """Every policy the environment's clusters name, by id. A command reads them through
    RunContext.cluster_policies, which asks here once per policy."""

    out: dict[str, ClusterPolicy] = {}
    versions: tuple[Mapping[str, Any], ...] | None = None  # the workspace's runtimes, read once
    for cluster in env.clusters:
        pid = cluster.policy_id
        if pid is None or pid in out:
            continue
        try:
            policy = ClusterPolicy.from_api(client.get_cluster_policy(pid))
            if policy.names_special_runtime():
                if versions is None:
                    versions = tuple(client.spark_versions())
                policy = dataclasses.replace(policy, runtimes=versions)
            out[pid] = policy
        except WorkspaceError as exc:
            if exc.not_found:
                raise PolicyConflict(
                    f"clusters.{cluster.name}.policy_id: no cluster policy {pid} in {env.databricks_host} — "
                    "copy the id from Compute → Policies"
                ) from None
            raise ProvisionError(f"cannot read cluster policy {pid} ({exc.message})") from None
    return out


def apply_policies(
    env: Environment, policies: Mapping[str, ClusterPolicy], note: Callable[[str], None] | None = None
) -> Environment:
    """The environment with each cluster as its policy will make it; PolicyConflict on the first refusal.

    `note` hears what the run should say once (defaults the workspace fills in)."""
    clusters = tuple(
        apply_policy(c, policies[c.policy_id], note) if c.policy_id is not None and c.policy_id in policies else c
        for c in env.clusters
    )
    return dataclasses.replace(env, clusters=clusters)


def apply_policy(cluster: ClusterSpec, policy: ClusterPolicy, note: Callable[[str], None] | None = None) -> ClusterSpec:
    scalars: dict[str, Any] = {}
    maps: dict[str, dict[str, str]] = {name: dict(getattr(cluster, name)) for name in MAP_FIELDS}
    changes: dict[str, Any] = {}
    workspace_defaults: list[str] = []
    for path, rule in sorted(policy.rules.items()):
        if path in UNCHECKED_VIRTUAL:
            continue
        present, value, sent = _configured(cluster, path)
        kind = rule.get("type")
        if kind == "fixed" and not present:
            fixed = rule.get("value")
            head, _, key = path.partition(".")
            if head in MAP_FIELDS and key:
                maps[head][key] = _map_value(fixed)
                continue
            if path in SCALAR_FIELDS:
                scalars[path] = fixed
                continue
            if sent is None:
                continue  # a field the templates never send: the policy's value simply stands
        if not present and sent is None and "defaultValue" in rule and not rule.get("isOptional"):
            default = rule["defaultValue"]
            head, _, key = path.partition(".")
            if head in MAP_FIELDS and key:
                maps[head][key] = _map_value(default)
            elif path in SCALAR_FIELDS:
                scalars[path] = default
            else:
                workspace_defaults.append(f"{path} = {json.dumps(default)}")
            continue
        problem = _violation(rule, value if present else sent, present or sent is not None, path, policy)
        if problem:
            shown = json.dumps(value if present else sent)
            origin = "" if present else " (the provider's default)"
            if not present and sent is None and not _expressible(path):
                raise PolicyConflict(
                    f"clusters.{cluster.name}: cluster policy '{policy.name}' ({policy.policy_id}) requires {path} "
                    f"({kind}{_limits(rule)}), which provision.yaml cannot set and the policy gives no defaultValue — "
                    "ask a workspace admin to add a defaultValue or isOptional to the rule, or use another policy"
                )
            raise PolicyConflict(
                f"clusters.{cluster.name}.{path}: {shown}{origin} breaks cluster policy '{policy.name}' "
                f"({policy.policy_id}): {problem} — set a value the policy allows, or ask a workspace admin"
            )
    if workspace_defaults:
        changes["apply_policy_default_values"] = True
        if note is not None:
            note(
                f"clusters.{cluster.name}: cluster policy '{policy.name}' requires {', '.join(workspace_defaults)} "
                "(its defaultValue), which provision.yaml has no key for: the cluster is created with "
                "apply_policy_default_values = true so Databricks fills it in"
            )
    changes.update(scalars)
    changes.update(maps)
    return dataclasses.replace(cluster, **changes)


def _map_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _expressible(path: str) -> bool:
    """provision.yaml has a key for this attribute path."""
    head, _, key = path.partition(".")
    autoscale = ("autoscale.min_workers", "autoscale.max_workers")
    return path in SCALAR_FIELDS or (head in MAP_FIELDS and bool(key)) or path in autoscale


def _configured(cluster: ClusterSpec, path: str) -> tuple[bool, Any, Any]:
    """(set in provision.yaml, its value, what the provider sends when it is not set)."""
    if path in VIRTUAL:
        return True, VIRTUAL[path], None
    head, _, key = path.partition(".")
    if head in MAP_FIELDS and key:
        entries = getattr(cluster, head)
        return key in entries, entries.get(key), None
    if head == "autoscale" and key in ("min_workers", "max_workers"):
        if cluster.autoscale is None:
            return False, None, None
        return True, cluster.autoscale[0 if key == "min_workers" else 1], None
    if path in SCALAR_FIELDS:
        value = getattr(cluster, path)
        if path == "num_workers" and cluster.autoscale is not None:
            return False, None, None
        return value is not None, value, PROVIDER_DEFAULTS.get(path)
    return False, None, None


def _violation(
    rule: Mapping[str, Any], value: Any, present: bool, path: str = "", policy: ClusterPolicy | None = None
) -> str | None:
    kind = rule.get("type")
    if not present:
        if kind not in _LIMITING or rule.get("isOptional"):
            return None
        return f"the policy requires it ({kind}{_limits(rule)}) — set it"
    versions = policy.runtimes if policy is not None and path == "spark_version" else ()

    def same(a: Any, b: Any) -> bool:
        return runtimes.matches(a, b, versions) if runtimes.is_special(b) else _same(a, b)

    if kind == "fixed" and not same(value, rule.get("value")):
        return f"fixed to {json.dumps(rule.get('value'))}{_resolved(rule.get('value'), versions)}"
    if kind == "forbidden":
        return "forbidden — leave it out"
    if kind == "allowlist" and not any(same(value, v) for v in rule.get("values", [])):
        shown = "".join(_resolved(v, versions) for v in rule.get("values", []))
        return f"allowlist {json.dumps(rule.get('values'))}{shown}"
    if kind == "blocklist" and any(same(value, v) for v in rule.get("values", [])):
        return f"blocklist {json.dumps(rule.get('values'))}"
    if kind == "range":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"range{_limits(rule)} needs a number"
        low, high = rule.get("minValue"), rule.get("maxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            return f"range{_limits(rule)}"
    if kind == "regex" and not re.fullmatch(str(rule.get("pattern", "")), str(value)):
        return f"regex {rule.get('pattern')}"
    return None


def _resolved(value: Any, versions: Sequence[Mapping[str, Any]]) -> str:
    """How a special runtime value reads in this workspace: ' (auto:latest-lts = 17.3.x-scala2.13 here)'."""
    if not runtimes.is_special(value):
        return ""
    keys = runtimes.resolve(str(value), versions)
    return f" ({value} = {' or '.join(keys)} in this workspace)" if keys else f" ({value}: no such runtime here)"


def _limits(rule: Mapping[str, Any]) -> str:
    if rule.get("type") != "range":
        return ""
    return f" {rule.get('minValue', '-inf')}..{rule.get('maxValue', 'inf')}"


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a).lower() == str(b).lower()
