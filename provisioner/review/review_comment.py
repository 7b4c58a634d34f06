"""`provision summary merge plan-*.json`: one pull-request comment for every environment's plan.

Each CI matrix job writes its environment's JSON summary (`plan --summary plan-<env>.json`,
written on failure too). This merges them into one Markdown comment and one JSON document:

- the totals of every environment come first, in one table outside any fold: failed
  environments (with their one-line error), then those with changes, then the unchanged;
- each changed environment's resource table follows in its own `<details>` fold;
- the comment stays under GitHub's 65,535 characters however many environments there are:
  resource details are cut first (a line says how many), the totals table never — unless the
  environments' rows alone exceed the limit, when unchanged rows collapse into a name list.

Input is only our own secret-free JSON; the output is passed through the masker all the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError
from provisioner.review.plan_summary import GITHUB_COMMENT_LIMIT, TABLE_HEAD, ResourceSummary, change_notes, table_row
from provisioner.secret import mask

SCHEMA_VERSION = 1
MARKER = "<!-- dlz-provisioner plan -->"  # lets a CI step find and update its own comment
_ERROR_WIDTH = 300
_ORDER = {"failed": 0, "changes": 1, "no-changes": 2}


@dataclass(frozen=True)
class EnvPlan:
    environment: str
    status: str  # changes | no-changes | failed
    source: str  # the file it came from ("" when missing)
    error: str | None = None
    totals: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    sas_changes: bool = False
    expiry_date: str | None = None
    resources: tuple[ResourceSummary, ...] = ()
    unchanged: int = 0
    digest: str | None = None

    @property
    def notes(self) -> str:
        if self.status == "failed":
            return _cell(_clip(self.error or "failed", _ERROR_WIDTH))
        return " · ".join(change_notes(self.restarts, self.sas_changes, self.expiry_date, self.resources))

    def row(self) -> str:
        result = {"failed": "**failed**", "changes": "changes", "no-changes": "no changes"}[self.status]
        t = self.totals
        counts = " | ".join(str(t.get(k, "")) if self.status != "failed" else "" for k in _COUNTS)
        return f"| `{self.environment}` | {result} | {counts} | {self.notes} |\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "status": self.status,
            "error": self.error,
            "totals": self.totals or None,
            "restarts": self.restarts,
            "sasTokenChanges": self.sas_changes,
            "changeDigest": self.digest,
            "source": self.source or None,
        }


_COUNTS = ("import", "add", "change", "destroy")


def read_summaries(paths: Sequence[Path], expected: Sequence[str] = ()) -> list[EnvPlan]:
    """One EnvPlan per environment, sorted for review; an environment summarised twice is an error."""
    plans: dict[str, EnvPlan] = {}
    for path in paths:
        plan = _read(path)
        if plan.environment in plans:
            raise ConfigError(
                f"{path}: environment {plan.environment} is also summarised in {plans[plan.environment].source} — "
                "each environment must be planned once; remove the stale file"
            )
        plans[plan.environment] = plan
    for name in expected:
        if name not in plans:
            plans[name] = EnvPlan(name, "failed", "", error="no plan summary: the job ended before it planned")
    return sorted(plans.values(), key=lambda p: (_ORDER[p.status], p.environment))


def _read(path: Path) -> EnvPlan:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = type(exc).__name__
        raise ConfigError(f"{path}: not a JSON plan summary ({what}) — merge `plan --summary *.json`") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("environment"), str):
        raise ConfigError(f"{path}: not a JSON plan summary (no environment) — merge `plan --summary *.json`")
    name = doc["environment"]
    if doc.get("status") == "failed":
        return EnvPlan(name, "failed", str(path), error=str(doc.get("error") or "failed"))
    resources = tuple(ResourceSummary.from_json(r) for r in doc.get("resources") or [])
    listed = any(r.listed for r in resources)
    return EnvPlan(
        environment=name,
        status="changes" if listed else "no-changes",
        source=str(path),
        totals={k: int(doc.get("totals", {}).get(k, 0)) for k in _COUNTS},
        restarts=len(doc.get("restarts") or []),
        sas_changes=bool((doc.get("sasToken") or {}).get("changes")),
        expiry_date=(doc.get("sasToken") or {}).get("expiryDate"),
        resources=resources,
        unchanged=int(doc.get("unchanged") or 0),
        digest=doc.get("changeDigest"),
    )


def headline(plans: Sequence[EnvPlan]) -> str:
    changed = sum(p.status == "changes" for p in plans)
    unchanged = sum(p.status == "no-changes" for p in plans)
    failed = sum(p.status == "failed" for p in plans)
    return f"{len(plans)} environments, {changed} with changes, {unchanged} unchanged, {failed} failed"


def to_markdown(plans: Sequence[EnvPlan], limit: int = GITHUB_COMMENT_LIMIT) -> str:
    head = f"{MARKER}\n### dlz-provisioner plan: {headline(plans)}\n\n"
    if not plans:
        return head + "No environment is affected by this change: nothing was planned.\n"
    table = "| environment | result | import | add | change | destroy | notes |\n|---|---|---|---|---|---|---|\n"
    rows = "".join(p.row() for p in plans)
    if len(head) + len(table) + len(rows) > limit:
        rows = _compact_rows(plans, limit - len(head) - len(table))
    text = head + table + rows
    for plan in plans:
        if plan.status != "changes":
            continue
        fold = _fold(plan, limit - len(text))
        if fold is None:
            rest = sum(p.status == "changes" for p in plans[plans.index(plan) :])
            text += f"\n_Details of {rest} more environment(s) not shown (comment size limit): see the merged JSON._\n"
            break
        text += fold
    return mask(text)


def _fold(plan: EnvPlan, room: int) -> str | None:
    """The environment's resource table in a fold, rows cut to fit `room`; None if not even its frame fits."""
    shown = [r for r in plan.resources if r.listed]
    top = f"\n<details><summary><code>{plan.environment}</code>: {len(shown)} resource(s) affected, "
    top += f"{plan.unchanged} unchanged</summary>\n\n{TABLE_HEAD}"
    tail = "\n</details>\n"
    reserve = 120  # the closing note of the whole comment, should a later fold not fit
    body = ""
    for i, r in enumerate(shown):
        row = table_row(r)
        note = f"| … | {len(shown) - i} more not shown (comment size limit) | | |\n"
        if len(top) + len(body) + len(row) + len(note) + len(tail) + reserve > room:
            if not body:
                return None
            return top + body + note + tail
        body += row
    return top + body + tail


def _compact_rows(plans: Sequence[EnvPlan], room: int) -> str:
    """Past a few hundred environments: failed and changed rows stay, unchanged ones become names."""
    rows = "".join(p.row() for p in plans if p.status != "no-changes")
    names = [p.environment for p in plans if p.status == "no-changes"]
    line = f"| unchanged ({len(names)}) | no changes | 0 | 0 | 0 | 0 | {', '.join(names)} |\n"
    if len(rows) + len(line) > room:
        line = f"| unchanged ({len(names)}) | no changes | 0 | 0 | 0 | 0 | names in the merged JSON |\n"
    return rows + line


def to_json(plans: Sequence[EnvPlan]) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "environments": len(plans),
        "withChanges": sum(p.status == "changes" for p in plans),
        "unchanged": sum(p.status == "no-changes" for p in plans),
        "failed": sum(p.status == "failed" for p in plans),
        "results": [p.to_json() for p in plans],
    }


def format_review(plans: Sequence[EnvPlan], kind: str) -> str:
    if kind == "json":
        return mask(json.dumps(to_json(plans), indent=2, sort_keys=True) + "\n")
    return to_markdown(plans)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
