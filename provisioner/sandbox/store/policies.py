"""Cluster policies: definitions, `policies/clusters/get|list`, and their effect on create/edit.

Semantics (Databricks "Compute policy reference", learn.microsoft.com …/clusters/policy-definition;
provider `docs/resources/cluster_policy.md`; SDK `service/compute.py` `ClusterSpec`):
- a definition maps an attribute path to one rule: `fixed` (value), `forbidden`, `allowlist` /
  `blocklist` (values), `range` (minValue/maxValue), `regex` (pattern), `unlimited`; any
  limiting rule may carry `defaultValue` and `isOptional`; `hidden` only hides the field in
  the UI. Paths are API names, nested with dots; `spark_conf.<key>`, `custom_tags.<key>` and
  `spark_env_vars.<key>` address one map entry; `cluster_type` is a virtual attribute.
- "fixed" values are written into the cluster whether or not the request asks for defaults;
  `defaultValue`s only when it sends `apply_policy_default_values: true` ("When set to true,
  fixed and default values from the policy will be used for fields that are omitted"). The
  databricks/cli test server (`libs/testserver/cluster_policies.go`) models the same and says
  it was pinned against a real workspace.
- a request that contradicts a rule is refused: 400 `INVALID_PARAMETER_VALUE` "Cluster
  validation error: Validation failed for custom_tags, CostCenter must be …" (the shape the
  cli test server copied from the backend for a fixed nested attribute; the wording for the
  other rule types is approximated the same way). A limited attribute that is neither set nor
  defaulted is refused unless `isOptional`.
- `apply_policy_default_values` is not echoed at the top level of `clusters/get`.
- Virtual attributes (compute policy reference, "Virtual attribute paths") are limits on the
  cluster, never request fields: `cluster_type` is "all-purpose" here; `dbus_per_hour` limits
  the cluster's DBU cost, which Databricks computes from per-node-type DBU rates that no
  source the project can read publishes, so it is accepted unchecked (the tool never
  evaluates it either: Databricks' own refusal at create is what the user would see).
- `spark_version` policy values `auto:latest-lts` etc. are resolved against the workspace's
  runtimes (provisioner/sandbox/catalog.py, served by `clusters/spark-versions`) with
  provisioner/sandbox/runtimes.py: a fixed special value writes the resolved key into the
  cluster; a request's key is allowed when it is one the special value resolves to.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.catalog import spark_versions
from provisioner.sandbox.runtimes import is_special, resolve
from provisioner.sandbox.runtimes import matches as runtime_matches
from provisioner.sandbox.store.base import DatabricksError, StoreBase, now_ms, workspace_state

MAP_ATTRIBUTES = ("spark_conf", "spark_env_vars", "custom_tags")
_VIRTUAL = {"cluster_type": "all-purpose"}  # every cluster this emulator knows is all-purpose
_SKIPPED_VIRTUAL = frozenset({"dbus_per_hour"})
# Policy fields kept as sent (databricks-sdk-py `compute.CreatePolicy`), besides name and definition.
POLICY_FIELDS = (
    "description",
    "max_clusters_per_user",
    "policy_family_id",
    "policy_family_definition_overrides",
    "libraries",
)


class PolicyStore(StoreBase):
    def create_policy(
        self,
        workspace_key: str,
        name: str,
        definition: Mapping[str, Any] | str,
        description: str = "",
        fields: Mapping[str, Any] | None = None,
    ) -> str:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        _parse_definition(text)
        with self._txn() as state:
            policies = _policies(workspace_state(state, workspace_key))
            if any(p["name"] == name for p in policies.values()):
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Policy with name {name} already exists")
            policy_id = uuid.uuid4().hex[:16].upper()
            policies[policy_id] = {
                "policy_id": policy_id,
                "name": name,
                "definition": text,
                # Like every empty field, an empty description is left out of answers (Go's omitempty).
                **({"description": description} if description else {}),
                "creator_user_name": "admin@example.com",
                "created_at_timestamp": now_ms(),
                "is_default": False,
                **{k: v for k, v in (fields or {}).items() if k in POLICY_FIELDS},
            }
            return policy_id

    def edit_policy(
        self,
        workspace_key: str,
        policy_id: str,
        definition: Mapping[str, Any] | str,
        name: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        _parse_definition(text)
        with self._txn() as state:
            policy = _policy(workspace_state(state, workspace_key), policy_id)
            policy["definition"] = text
            if name:
                policy["name"] = name
            for key, value in (fields or {}).items():
                if key not in POLICY_FIELDS:
                    continue
                if value in (None, ""):
                    policy.pop(key, None)
                else:
                    policy[key] = value

    def get_policy(self, workspace_key: str, policy_id: str) -> dict[str, Any]:
        with self._txn() as state:
            return copy.deepcopy(_policy(workspace_state(state, workspace_key), policy_id))

    def list_policies(self, workspace_key: str) -> list[dict[str, Any]]:
        with self._txn() as state:
            policies = _policies(workspace_state(state, workspace_key))
            return [copy.deepcopy(policies[k]) for k in sorted(policies)]

    def delete_policy(self, workspace_key: str, policy_id: str) -> None:
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            _policy(ws, policy_id)
            del _policies(ws)[policy_id]


def _policies(ws: dict[str, Any]) -> dict[str, Any]:
    policies: dict[str, Any] = ws.setdefault("policies", {})
    return policies


def _policy(ws: dict[str, Any], policy_id: str) -> dict[str, Any]:
    policy = _policies(ws).get(policy_id)
    if policy is None:
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Can't find a cluster policy with id: {policy_id}.")
    record: dict[str, Any] = policy
    return record


def _parse_definition(text: str) -> dict[str, dict[str, Any]]:
    try:
        rules = json.loads(text)
    except ValueError:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Policy definition is not valid JSON") from None
    if not isinstance(rules, dict) or not all(isinstance(r, dict) and "type" in r for r in rules.values()):
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Each policy element needs a type")
    return rules


def enforce_policy(ws: dict[str, Any], body: dict[str, Any]) -> None:
    """Apply the policy named by `body["policy_id"]` to a create/edit body, in place, or refuse it."""
    apply_defaults = bool(body.pop("apply_policy_default_values", False))
    policy_id = body.get("policy_id")
    if not policy_id:
        return
    stored = _policies(ws).get(policy_id)
    if stored is None:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Can't find a cluster policy with id: {policy_id}.")
    problems: list[str] = []
    for path, rule in sorted(_parse_definition(stored["definition"]).items()):
        if path in _SKIPPED_VIRTUAL:
            continue
        present, value = (True, _VIRTUAL[path]) if path in _VIRTUAL else _lookup(body, path)
        kind = rule["type"]
        if not present:
            if kind == "fixed":
                value = rule.get("value")
                if path == "spark_version" and is_special(value):
                    resolved = resolve(str(value), spark_versions())
                    value = resolved[0] if resolved else value
                _store(body, path, value)
            elif apply_defaults and "defaultValue" in rule:
                _store(body, path, rule["defaultValue"])
            elif kind not in ("forbidden", "unlimited") and not rule.get("isOptional", False):
                problems.append(f"{_name(path)}, the value must be present")
            continue
        problem = _violation(rule, value, tuple(spark_versions()) if path == "spark_version" else ())
        if problem:
            problems.append(f"{_name(path)} {problem}")
    if problems:
        raise DatabricksError(
            400, "INVALID_PARAMETER_VALUE", "Cluster validation error: Validation failed for " + "; ".join(problems)
        )


def _violation(rule: Mapping[str, Any], value: Any, runtimes: tuple[dict[str, str], ...] = ()) -> str | None:
    kind = rule["type"]

    def same(a: Any, b: Any) -> bool:
        return runtime_matches(a, b, runtimes) if runtimes else _same(a, b)

    if kind == "fixed" and not same(value, rule.get("value")):
        return f"must be {rule.get('value')} (is {json.dumps(value)})"
    if kind == "forbidden":
        return "must not be present"
    if kind == "allowlist" and not any(same(value, v) for v in rule.get("values", [])):
        return f"must be one of {rule.get('values')} (is {json.dumps(value)})"
    if kind == "blocklist" and any(same(value, v) for v in rule.get("values", [])):
        return f"must not be one of {rule.get('values')} (is {json.dumps(value)})"
    if kind == "range":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"must be a number (is {json.dumps(value)})"
        if "minValue" in rule and number < float(rule["minValue"]):
            return f"must be at least {rule['minValue']} (is {json.dumps(value)})"
        if "maxValue" in rule and number > float(rule["maxValue"]):
            return f"must be at most {rule['maxValue']} (is {json.dumps(value)})"
    if kind == "regex" and not re.fullmatch(str(rule.get("pattern", "")), str(value)):
        return f"must match {rule.get('pattern')} (is {json.dumps(value)})"
    return None


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return str(a).lower() == str(b).lower()  # spark_conf "true" against a JSON true, 60 against "60"


def _split(path: str) -> list[str]:
    head, _, rest = path.partition(".")
    if head in MAP_ATTRIBUTES and rest:
        return [head, rest]  # the rest is one key, dots and all
    return path.split(".")


def _name(path: str) -> str:
    return ", ".join(_split(path))


def _lookup(body: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = body
    for segment in _split(path):
        if not isinstance(node, Mapping) or segment not in node:
            return False, None
        node = node[segment]
    return True, node


def _store(body: dict[str, Any], path: str, value: Any) -> None:
    segments = _split(path)
    node = body
    for segment in segments[:-1]:
        node = node.setdefault(segment, {})
    if segments[0] in MAP_ATTRIBUTES:
        value = str(value).lower() if isinstance(value, bool) else str(value)  # maps hold strings
    node[segments[-1]] = value
