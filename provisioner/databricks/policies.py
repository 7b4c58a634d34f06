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

Only `fixed` values are applied: the tool never sends `apply_policy_default_values`, so a
`defaultValue` never reaches the cluster. Fields the templates do not render (azure_attributes,
init scripts, …) are left to the policy: the provider suppresses their diffs or computes them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.databricks.cluster_fields import BASIC_FIELDS, MAP_FIELDS
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


@dataclass(frozen=True)
class ClusterPolicy:
    policy_id: str
    name: str
    rules: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> ClusterPolicy:
        try:
            rules = json.loads(str(body.get("definition") or "{}"))
        except ValueError:
            rules = {}
        return cls(str(body.get("policy_id")), str(body.get("name") or ""), rules if isinstance(rules, dict) else {})


class PolicyConflict(ProvisionError):
    """A configured cluster that its cluster policy would refuse."""


def fetch_policies(client: WorkspaceClient, env: Environment) -> dict[str, ClusterPolicy]:
    """Every policy the environment's clusters name, by id."""
    from provisioner.databricks.workspace import WorkspaceError

    out: dict[str, ClusterPolicy] = {}
    for cluster in env.clusters:
        pid = cluster.policy_id
        if pid is None or pid in out:
            continue
        try:
            out[pid] = ClusterPolicy.from_api(client.get_cluster_policy(pid))
        except WorkspaceError as exc:
            if exc.not_found:
                raise PolicyConflict(
                    f"clusters.{cluster.name}.policy_id: no cluster policy {pid} in {env.databricks_host} — "
                    "copy the id from Compute → Policies"
                ) from None
            raise ProvisionError(f"cannot read cluster policy {pid} ({exc.message})") from None
    return out


def apply_policies(env: Environment, policies: Mapping[str, ClusterPolicy]) -> Environment:
    """The environment with each cluster as its policy will make it; PolicyConflict on the first refusal."""
    clusters = tuple(
        apply_policy(c, policies[c.policy_id]) if c.policy_id is not None and c.policy_id in policies else c
        for c in env.clusters
    )
    return dataclasses.replace(env, clusters=clusters)


def apply_policy(cluster: ClusterSpec, policy: ClusterPolicy) -> ClusterSpec:
    scalars: dict[str, Any] = {}
    maps: dict[str, dict[str, str]] = {name: dict(getattr(cluster, name)) for name in MAP_FIELDS}
    changes: dict[str, Any] = {}
    for path, rule in sorted(policy.rules.items()):
        present, value, sent = _configured(cluster, path)
        if rule.get("type") == "fixed" and not present:
            fixed = rule.get("value")
            head, _, key = path.partition(".")
            if head in MAP_FIELDS and key:
                maps[head][key] = str(fixed).lower() if isinstance(fixed, bool) else str(fixed)
                continue
            if path in SCALAR_FIELDS:
                scalars[path] = fixed
                continue
            if sent is None:
                continue  # a field the templates never send: the policy's value simply stands
        problem = _violation(rule, value if present else sent, present or sent is not None)
        if problem:
            shown = json.dumps(value if present else sent)
            origin = "" if present else " (the provider's default)"
            raise PolicyConflict(
                f"clusters.{cluster.name}.{path}: {shown}{origin} breaks cluster policy '{policy.name}' "
                f"({policy.policy_id}): {problem} — set a value the policy allows, or ask a workspace admin"
            )
    changes.update(scalars)
    changes.update(maps)
    return dataclasses.replace(cluster, **changes)


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


def _violation(rule: Mapping[str, Any], value: Any, present: bool) -> str | None:
    kind = rule.get("type")
    if not present:
        if kind in ("fixed", "forbidden", "unlimited") or rule.get("isOptional"):
            return None
        return f"the policy requires it ({kind}{_limits(rule)}) — set it"
    if kind == "fixed" and not _same(value, rule.get("value")):
        return f"fixed to {json.dumps(rule.get('value'))}"
    if kind == "forbidden":
        return "forbidden — leave it out"
    if kind == "allowlist" and not any(_same(value, v) for v in rule.get("values", [])):
        return f"allowlist {json.dumps(rule.get('values'))}"
    if kind == "blocklist" and any(_same(value, v) for v in rule.get("values", [])):
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


def _limits(rule: Mapping[str, Any]) -> str:
    if rule.get("type") != "range":
        return ""
    return f" {rule.get('minValue', '-inf')}..{rule.get('maxValue', 'inf')}"


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a).lower() == str(b).lower()
