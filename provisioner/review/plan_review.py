"""The reviewed thing is a secret-free change set, not a plan file: `apply --reviewed plan-<env>.json`.

A saved plan holds the SAS token, so CI must not carry one from the review job to the apply
job. Instead the plan summary records a *change set* — per resource that changes (or
restarts): its address, action, import id, whether it restarts a running cluster, and for
each attribute that changes its new value — every value Terraform marks sensitive replaced
by `(sensitive)`, every computed one by `(known after apply)`, the whitelisted plain
settings (SHOWN_VALUES) as they are and any other value by a SHA-256 fingerprint, so the
summary copies out no free-form value (spark_env_vars, tags, …) — and a digest over it.
The apply job plans afresh and applies that plan only if its change set has the same digest.

**A token AEP rotated in between** is never part of the change set: its value is sensitive
and its expiry date is left out. It counts only through the resources it changes. In
`secret_scope` mode (the default) no Terraform resource holds the token — the tool writes the
secret itself on apply — so a rotation never differs from a review; the apply writes the
token that is valid *now*. In `inline` mode a new token updates every cluster's `spark_conf`:
if the reviewed change set already had exactly those updates (a first deployment, a reviewed
rotation) the fresh plan matches and applies the current token, never the reviewer's older
one; if not, the apply stops and asks for a new review.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provisioner.databricks.cluster_fields import BASIC_FIELDS
from provisioner.errors import ConfigError, ProvisionError

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
DIGEST_PREFIX = "sha256:"
# Plain settings a reviewer reads as values (before → after); any other value only as a fingerprint.
SHOWN_VALUES = frozenset({*BASIC_FIELDS, "data_security_mode", "runtime_engine", "is_pinned", "policy_id"})
# Attributes the provider computes (ids, states, timestamps): not part of what a reviewer approves.
COMPUTED = frozenset(
    {"id", "cluster_id", "state", "url", "default_tags", "last_updated_timestamp", "config_reference", "backend_type"}
)


class Reviewed(Protocol):
    """What the change set takes of a resource's summary (plan_summary.ResourceSummary)."""

    @property
    def listed(self) -> bool: ...

    @property
    def address(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def import_id(self) -> str | None: ...

    @property
    def restart(self) -> bool: ...


class ReviewMismatch(ProvisionError):
    """The fresh plan is not the reviewed one: nothing was applied."""


def change_set(changes: list[dict[str, Any]], resources: Sequence[Reviewed]) -> list[dict[str, Any]]:
    """The secret-free description of what a plan does, one entry per listed resource, sorted."""
    entries = []
    for change, res in zip(changes, resources, strict=True):
        if not res.listed:
            continue
        entries.append(
            {
                "address": res.address,
                "action": res.action,
                "importId": res.import_id,
                "values": _new_values(change.get("change", {}), res.action),
                "restartsRunningCluster": res.restart,
            }
        )
    return sorted(entries, key=lambda e: str(e["address"]))


def digest(entries: list[dict[str, Any]]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DIGEST_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _new_values(body: dict[str, Any], action: str) -> dict[str, Any]:
    if action in ("delete", "import", "no-op", "forget"):
        return {}
    before = body.get("before") or {}
    after = body.get("after") or {}
    unknown = body.get("after_unknown") or {}
    sensitive = body.get("after_sensitive") or {}
    sensitive = sensitive if isinstance(sensitive, dict) else {}
    keys = set(after) | {k for k, v in unknown.items() if v is True}
    if action != "create":
        keys = {k for k in keys if before.get(k) != after.get(k) or unknown.get(k) is True}
    values = {}
    for key in sorted(keys - COMPUTED):
        value = _redact(after.get(key), sensitive.get(key), unknown.get(key))
        if value is not None:
            values[key] = _fingerprint(key, value)
    return values


def _fingerprint(key: str, value: Any) -> Any:
    if value in (SENSITIVE, UNKNOWN) or (key in SHOWN_VALUES and not isinstance(value, (dict, list))):
        return value
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DIGEST_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _redact(value: Any, sensitive: Any, unknown: Any) -> Any:
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    if isinstance(value, dict):
        s = sensitive if isinstance(sensitive, dict) else {}
        u = unknown if isinstance(unknown, dict) else {}
        keys = set(value) | {k for k, v in u.items() if v is True}
        return {k: _redact(value.get(k), s.get(k), u.get(k)) for k in sorted(keys)}
    if isinstance(value, list):
        s_list = sensitive if isinstance(sensitive, list) else []
        u_list = unknown if isinstance(unknown, list) else []
        return [
            _redact(v, s_list[i] if i < len(s_list) else None, u_list[i] if i < len(u_list) else None)
            for i, v in enumerate(value)
        ]
    if isinstance(value, str) and "sig=" in value:
        return SENSITIVE  # a SAS token in an attribute its provider forgot to mark sensitive
    return value


# ---- the apply side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedPlan:
    path: Path
    environment: str
    changes: list[dict[str, Any]]
    digest: str

    @classmethod
    def load(cls, path: Path) -> ReviewedPlan:
        """Read a `plan --summary FILE.json`; one line naming the file and the fix on any problem."""
        rerun = "re-run the review (`provision plan --env ENV --summary plan-ENV.json`)"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file — {rerun}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a plan summary ({type(exc).__name__}) — {rerun}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("environment"), str):
            raise ConfigError(f"{path}: not a plan summary (no environment) — {rerun}")
        if doc.get("status") == "failed":
            raise ConfigError(f"{path}: records a failed plan of {doc['environment']} — nothing was reviewed; {rerun}")
        changes, recorded = doc.get("changeSet"), doc.get("changeDigest")
        if not isinstance(changes, list) or not isinstance(recorded, str):
            raise ConfigError(f"{path}: has no changeSet/changeDigest (written by an older provision?) — {rerun}")
        if digest(changes) != recorded:
            raise ConfigError(f"{path}: changeDigest does not match its changeSet (edited?) — {rerun}")
        return cls(path, doc["environment"], changes, recorded)

    def require_match(self, fresh: list[dict[str, Any]]) -> None:
        if digest(fresh) == self.digest:
            return
        shown = differences(self.changes, fresh)
        more = f"; {len(shown) - 3} more" if len(shown) > 3 else ""
        raise ReviewMismatch(
            f"{self.environment}: the plan now differs from the reviewed {self.path.name} "
            f"({'; '.join(shown[:3])}{more}) — nothing was applied; re-run the review "
            f"(`provision plan --env {self.environment} --summary {self.path.name}`) and approve the new summary"
        )


def differences(reviewed: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[str]:
    """Per address, what changed between the reviewed and the fresh change set (secret-free)."""
    old = {str(e["address"]): e for e in reviewed}
    new = {str(e["address"]): e for e in fresh}
    out = []
    for address in sorted(set(old) | set(new)):
        a, b = old.get(address), new.get(address)
        if a == b:
            continue
        if a is None or b is None or _what(a) != _what(b):
            out.append(f"{address}: reviewed {_what(a)}, now {_what(b)}")
        else:
            keys = sorted(
                k
                for k in set(a.get("values", {})) | set(b.get("values", {}))
                if a.get("values", {}).get(k) != b.get("values", {}).get(k)
            )
            what = ", ".join(keys) or "import id"
            out.append(f"{address}: {what} differ")
    return out


def _what(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "no change"
    restarts = bool(entry.get("restartsRunningCluster"))
    if entry["action"] == "no-op":
        return "a restart" if restarts else "no change"
    return str(entry["action"]) + (" with a restart" if restarts else "")
