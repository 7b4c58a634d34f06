"""`provision plan --summary FILE.md|FILE.json`: what a reviewer needs from a plan, and nothing secret.

Built only from `terraform show -json <plan>` (never from Terraform's human output). That
document holds sensitive values in plain text (the SAS token in `variables`, in the
secret's `string_value`, in an inline `spark_conf`), so this module reads values only to
*compare* them and copies out nothing but addresses, actions, attribute and map-key names,
cluster ids and states, and a short whitelist of scalar settings. The finished text is
also passed through the process-wide masker as a last line of defence.

Markdown is shaped for a pull-request comment: the one-line totals first and outside any
fold, details in `<details>`, always under GitHub's 65,535-character comment limit
(details are truncated, never the totals). The JSON shape is documented in docs/plan-summary.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from provisioner.atomic import atomic_write
from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.review.plan_review import COMPUTED, SHOWN_VALUES, change_set, digest
from provisioner.secret import MASK, Secret, mask

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.terraform import TerraformRunner


class Shows(Protocol):
    """Where a summary gets its runner for `terraform show` (provisioner.run.context.RunContext)."""

    def runner(self, env: Environment, sas: Secret | None, console: Console | None = None) -> TerraformRunner: ...


SCHEMA_VERSION = 1
GITHUB_COMMENT_LIMIT = 65_535
_MAPS = frozenset({"spark_conf", "spark_env_vars", "custom_tags"})
_RESIZE_ONLY = frozenset({"num_workers", "autoscale"})


@dataclass
class ResourceSummary:
    address: str
    type: str
    action: str  # create | update | replace | delete | import | import+update | no-op
    import_id: str | None = None
    changed: list[str] = field(default_factory=list)  # safe descriptions
    restart: bool = False
    restart_reason: str | None = None
    sas_entry_changes: bool = False

    @property
    def listed(self) -> bool:
        """Shown in the details: anything that changes, or restarts although its config does not."""
        return self.action != "no-op" or self.restart

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ResourceSummary:
        return cls(
            address=str(doc.get("address")),
            type=str(doc.get("type")),
            action=str(doc.get("action")),
            import_id=doc.get("importId"),
            changed=[str(c) for c in doc.get("changedAttributes") or []],
            restart=bool(doc.get("restartsRunningCluster")),
            restart_reason=doc.get("restartReason"),
            sas_entry_changes=bool(doc.get("sasEntryChanges")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "type": self.type,
            "action": self.action,
            "importId": self.import_id,
            "changedAttributes": self.changed,
            "restartsRunningCluster": self.restart,
            "restartReason": self.restart_reason,
            "sasEntryChanges": self.sas_entry_changes,
        }


@dataclass
class PlanSummary:
    environment: str
    mode: str
    resources: list[ResourceSummary]
    sas_changes: bool
    expiry_date: str
    change_set: list[dict[str, Any]] = field(default_factory=list)
    rotation_needed: str | None = None  # why AEP's current token is not the one the workspace holds

    @property
    def status(self) -> str:
        return "changes" if any(r.listed for r in self.resources) else "no-changes"

    @property
    def totals(self) -> dict[str, int]:
        t = {"import": 0, "add": 0, "change": 0, "destroy": 0}
        for r in self.resources:
            if r.action.startswith("import"):
                t["import"] += 1
            if r.action in ("create", "replace"):
                t["add"] += 1
            if r.action in ("update", "import+update"):
                t["change"] += 1
            if r.action in ("delete", "replace"):
                t["destroy"] += 1
        return t

    @property
    def restarts(self) -> list[str]:
        return [r.address for r in self.resources if r.restart]

    def totals_line(self) -> str:
        t = self.totals
        line = (
            f"Plan for `{self.environment}`: {t['import']} to import, {t['add']} to add, "
            f"{t['change']} to change, {t['destroy']} to destroy"
        )
        extras = []
        if self.rotation_needed:
            extras.append("⚠️ rotation needed: AEP issued a new SAS token the workspace does not hold yet")
        extras += change_notes(len(self.restarts), self.sas_changes, self.expiry_date, self.resources)
        return line + "".join(f" · {e}" for e in extras)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "environment": self.environment,
            "status": self.status,
            "error": None,
            "changeSet": self.change_set,
            "changeDigest": digest(self.change_set),
            "sasMode": self.mode,
            "totals": self.totals,
            "restarts": self.restarts,
            "rotationNeeded": self.rotation_needed,
            "sasToken": {"changes": self.sas_changes, "masked": f"sig={MASK}", "expiryDate": self.expiry_date},
            "resources": [r.to_json() for r in self.resources if r.listed],
            "unchanged": sum(1 for r in self.resources if not r.listed),
        }


# ---- building the summary from `terraform show -json` ------------------------------------


def change_notes(
    restarts: int, sas_changes: bool, expiry_date: str | None, resources: Iterable[ResourceSummary]
) -> list[str]:
    """What a reviewer should notice besides the counts: restarts, the token, anything destroyed."""
    notes = []
    if restarts:
        notes.append(f"{restarts} running cluster(s) restart")
    if sas_changes:
        notes.append(f"SAS token changes (`sig={MASK}`, expires {expiry_date})")
    destroyed = [r for r in resources if r.action in ("delete", "replace") and r.type != "databricks_secret"]
    if destroyed:
        # Replacing the secret is how every rotation works; anything else destroyed deserves a look.
        notes.append(f"⚠️ destroys {len(destroyed)} resource(s) besides the SAS secret")
    return notes


def summarize(
    plan: dict[str, Any], env: Environment, creds: DlzCredentials, *, secret_write: bool = False
) -> PlanSummary:
    """`secret_write`: secret_scope mode, the tool (not Terraform) writes a new value on apply."""
    sas_key = creds.spark_conf_key
    changes = [c for c in plan.get("resource_changes", []) if c.get("mode") == "managed"]
    resources = [_resource(c, sas_key) for c in changes]
    secret_changes = secret_write or any(
        r.type == "databricks_secret" and r.action in ("create", "replace") for r in resources
    )
    if env.sas.secret is not None and secret_changes:  # the clusters reference a secret
        reference = env.sas.secret_reference
        for res, change in zip(resources, changes, strict=True):
            # A new secret value reaches a running cluster only through a restart (rotate/apply do it).
            before = change.get("change", {}).get("before") or {}
            if (
                res.type == "databricks_cluster"
                and _running(before)
                and not res.restart
                and reference in (before.get("spark_conf") or {}).values()
            ):
                res.restart = True
                res.restart_reason = "the SAS secret gets a new value; running clusters are restarted to resolve it"
                res.sas_entry_changes = True
    sas_changes = secret_changes or any(r.sas_entry_changes for r in resources)
    return PlanSummary(
        env.name,
        env.sas.mode,
        resources,
        sas_changes,
        creds.expiry_date.isoformat(),
        change_set(changes, resources),
    )


def _action(change: dict[str, Any]) -> str:
    actions = list(change.get("change", {}).get("actions", []))
    importing = bool(change.get("change", {}).get("importing"))
    if actions in (["delete", "create"], ["create", "delete"]):
        return "replace"
    if actions == ["create"]:
        return "create"
    if actions == ["delete"]:
        return "delete"
    if actions == ["update"]:
        return "import+update" if importing else "update"
    if actions == ["forget"]:
        # A `removed { lifecycle { destroy = false } }` block (Terraform ≥ 1.7): out of state,
        # left alive — e.g. the SAS secret of older roots, which the tool owns from then on.
        return "forget"
    return "import" if importing else "no-op"


def _resource(change: dict[str, Any], sas_key: str) -> ResourceSummary:
    body = change.get("change", {})
    res = ResourceSummary(str(change.get("address")), str(change.get("type")), _action(change))
    importing = body.get("importing") or {}
    if importing.get("id"):
        res.import_id = str(importing["id"])
    if res.action in ("no-op", "import", "delete", "forget"):
        return res
    before = body.get("before") or {}
    after = body.get("after") or {}
    unknown = body.get("after_unknown") or {}
    sensitive = {**_flags(body.get("before_sensitive")), **_flags(body.get("after_sensitive"))}
    changed_keys = sorted(
        k
        for k in set(before) | set(after) | {k for k, v in unknown.items() if v is True}
        if k not in COMPUTED and (before.get(k) != after.get(k) or unknown.get(k) is True)
    )
    if res.action == "create":
        changed_keys = []  # a new resource: every attribute is new, listing them says nothing
    res.changed = [_describe(k, before, after, sensitive) for k in changed_keys]
    if res.type == "databricks_cluster":
        before_sas = (before.get("spark_conf") or {}).get(sas_key)
        after_sas = (after.get("spark_conf") or {}).get(sas_key)
        res.sas_entry_changes = before_sas != after_sas or _map_key_unknown(unknown, "spark_conf", sas_key)
        if res.action == "replace":
            res.restart, res.restart_reason = _running(before), "the cluster is replaced (a new cluster id)"
        elif res.action in ("update", "import+update") and _running(before) and not set(changed_keys) <= _RESIZE_ONLY:
            what = "spark_conf change" if "spark_conf" in changed_keys else "configuration change"
            res.restart, res.restart_reason = True, f"{what} on a RUNNING cluster (clusters/edit restarts it)"
    elif res.type == "databricks_secret":
        res.sas_entry_changes = res.action in ("create", "replace")
    if not res.restart:
        res.restart_reason = None
    return res


def _describe(key: str, before: dict[str, Any], after: dict[str, Any], sensitive: dict[str, Any]) -> str:
    if key in _MAPS and isinstance(before.get(key) or {}, dict) and isinstance(after.get(key) or {}, dict):
        old, new = before.get(key) or {}, after.get(key) or {}
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{key}[{k}]" for k in keys) or key
    if key in SHOWN_VALUES and not sensitive.get(key):
        return f"{key}: {_short(before.get(key))} → {_short(after.get(key))}"
    return key


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _flags(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _map_key_unknown(unknown: dict[str, Any], attr: str, key: str) -> bool:
    value = unknown.get(attr)
    return value is True or (isinstance(value, dict) and value.get(key) is True)


def _running(before: dict[str, Any]) -> bool:
    return before.get("state") == "RUNNING"


# ---- rendering ---------------------------------------------------------------------------


def to_markdown(summary: PlanSummary, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Totals first (never cut); details in a fold, truncated row by row to stay under `limit`."""
    head = f"**{summary.totals_line()}**\n"
    if summary.rotation_needed:
        head += (
            f"\n> ⚠️ **Rotation needed** — {summary.rotation_needed}. "
            "Applying this plan puts AEP's current token live.\n"
        )
    shown = [r for r in summary.resources if r.listed]
    unchanged = len(summary.resources) - len(shown)
    if not shown:
        return head + f"\nNo changes. {unchanged} resource(s) unchanged.\n"
    top = f"\n<details><summary>{len(shown)} resource(s) affected, {unchanged} unchanged</summary>\n\n{TABLE_HEAD}"
    tail = "\n</details>\n"
    rows = [table_row(r) for r in shown]
    body = ""
    for i, row in enumerate(rows):
        note = f"| … | {len(rows) - i} more not shown (comment size limit) | | |\n"
        if len(head) + len(top) + len(body) + len(row) + len(note) + len(tail) > limit:
            body += note
            break
        body += row
    return head + top + body + tail


TABLE_HEAD = "| resource | action | restarts a running cluster | changes |\n|---|---|---|---|\n"


def table_row(r: ResourceSummary) -> str:
    action = r.action + (f" (id `{_cell(r.import_id)}`)" if r.import_id else "")
    restart = f"yes — {r.restart_reason}" if r.restart else "no"
    changes = ", ".join(f"`{_cell(c)}`" for c in r.changed)
    if r.sas_entry_changes:
        changes = (changes + ", " if changes else "") + f"SAS entry → `sig={MASK}`"
    return f"| `{_cell(r.address)}` | {action} | {_cell(restart)} | {changes or '—'} |\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def format_summary(summary: PlanSummary, kind: str) -> str:
    if kind == "json":
        return json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n"
    return to_markdown(summary)


def summary_format(out_path: Path, option: str = "--summary") -> str:
    """The format, "md" or "json", named by the suffix of the file given to `option`."""
    suffix = out_path.suffix.lower()
    if suffix not in (".md", ".json"):
        raise ConfigError(f"{option} {out_path}: name a .md or .json file (the suffix picks the format)")
    return suffix[1:]


def write_summary(
    ctx: Shows,
    env: Environment,
    creds: DlzCredentials,
    plan_file: Path,
    out_path: Path,
    console: Console,
    *,
    secret_write: bool = False,
    rotation_needed: str | None = None,
) -> None:
    """Write the summary of `plan_file` to `out_path` (.md or .json), atomically."""
    kind = summary_format(out_path)
    summary = summary_of(ctx, env, creds, plan_file, console, secret_write=secret_write)
    summary.rotation_needed = rotation_needed
    write_text(out_path, mask(format_summary(summary, kind)))
    console.info(f"{env.name}: plan summary written to {out_path.resolve()}")


def summary_of(
    ctx: Shows,
    env: Environment,
    creds: DlzCredentials,
    plan_file: Path,
    console: Console,
    *,
    secret_write: bool = False,
) -> PlanSummary:
    """The summary of a saved plan (read through `terraform show -json`, which needs no token)."""
    if not plan_file.is_file():
        raise ConfigError(f"--summary: the plan {plan_file} was not saved — nothing to summarise")
    doc = ctx.runner(env, sas=None, console=console).show_json(plan_file)
    return summarize(doc, env, creds, secret_write=secret_write)


def write_failed_summary(environment: str, error: str, out_path: Path) -> None:
    """A failed plan still leaves its summary, so a merged review names the failure (masked)."""
    error = mask(error.splitlines()[0] if error else "failed")
    if summary_format(out_path) == "json":
        doc = {"schemaVersion": SCHEMA_VERSION, "environment": environment, "status": "failed", "error": error}
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    else:
        text = f"**Plan for `{environment}` failed:** {_cell(error)}\n"
    write_text(out_path, text)


def write_text(out_path: Path, text: str) -> None:
    """Atomically, 0644: summaries are meant to be shared (they hold no secret)."""
    out_path = out_path.resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_path, text, mode=0o644)
