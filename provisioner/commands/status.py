"""`provision status`: token expiry and whether every managed cluster really uses the current token.

The work lives in `provisioner.operations.status.check` (its analysis in
`provisioner.operations.status.drift`); this module prints the table or the --json document
(docs/status-json.md) and returns the exit code (0 healthy, 3 expiring, 4 drift, 1 error).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from provisioner.commands.options import run_context
from provisioner.commands.rotate import recovery_command
from provisioner.console import Console
from provisioner.operations.status.check import check_status
from provisioner.operations.status.drift import SECRET_HOLDS_REVOKED, StatusReport
from provisioner.operations.verify import ProbeOptions


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        probe = None
        if args.probe:
            probe = ProbeOptions.of(args.timeout, args.parallel)
        status = check_status(ctx, env, probe)
        if args.json:
            console.result(json.dumps(status.document, indent=2, sort_keys=True))
        else:
            _print_table(console, args, status.document, status.report)
        return int(status.exit_code)


def _print_table(console: Console, args: argparse.Namespace, doc: dict[str, Any], report: StatusReport) -> None:
    token = doc["token"]
    console.line(
        f"environment {doc['environment']}: token expires {token['expiryDate']} ({token['daysLeft']} days left, "
        f"warning at {token['warnDays']}); mode {token['mode']}"
    )
    if report.replaced is not None and report.unfinished_rotation is None:
        console.line(f"  ! ROTATION NEEDED: {report.replaced.reason()} — run `provision rotate`")
    secret = report.secret
    if secret is not None:
        console.line(f"secret {secret.scope}/{secret.key}: last written {secret.last_updated or '—'}")
        for problem in secret.problems:
            if report.replaced is None or problem != SECRET_HOLDS_REVOKED:  # ROTATION NEEDED said it
                console.line(f"  ! {problem}")
    rows = [("CLUSTER", "ID", "STATE", "SAS", "DLZ")] + [
        (c.name, c.cluster_id or "—", c.state, c.sas_entry, _yes_no(c.dlz_access)) for c in report.clusters
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for c in report.clusters:
        for problem in c.problems:
            console.line(f"  ! {c.name}: {problem}")
        for warning in c.warnings:
            console.line(f"  ~ {c.name}: {warning}")
    _print_connection_tokens(console, doc["connectionTokens"])
    if report.unfinished_rotation is not None:
        # The one command: whatever else is off, finishing the rotation comes first.
        console.line(f"  ! {report.unfinished_rotation} — finish it with `{recovery_command(args, report.env)}`")
    console.line(f"status: {doc['status']} (exit {doc['exitCode']})")


def _print_connection_tokens(console: Console, section: dict[str, Any]) -> None:
    """Each AEP base connection's Databricks token: expiry, days left, and what to do."""
    if section["error"]:
        console.line(f"  ~ AEP connections could not be read: {section['error']}")
    items = section["items"]
    if not items:
        return
    console.line(f"AEP connection tokens (warning at {section['warnDays']} days):")
    rows = [("CLUSTER", "CONNECTION", "TOKEN", "EXPIRES", "DAYS", "STATE")] + [
        (
            t["cluster"],
            t["connectionId"],
            t["tokenId"] or "—",
            t["expiryDate"] or ("never" if t["tokenId"] else "—"),
            "—" if t["daysLeft"] is None else str(t["daysLeft"]),
            t["state"],
        )
        for t in items
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.line("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for t in items:
        if t["detail"]:
            console.line(f"  {'!' if t['state'] != 'expiring' else '~'} {t['cluster']}: connection token {t['detail']}")


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")
