"""`provision status`: token expiry and whether every managed cluster really uses the current token.

The analysis lives in `provisioner.drift`; this module gathers its inputs, prints the
table or the --json document (docs/status-json.md) and returns the exit code
(0 healthy, 3 expiring, 4 drift, 1 error).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.drift import STATUS_WORD, StatusReport, status_report
from provisioner.workflow import RunContext, fetch_credentials, identify, read_env_state

if TYPE_CHECKING:
    from provisioner.config import Environment
    from provisioner.drift import Oracle
    from provisioner.reach.probe import ClusterProbe

SCHEMA_VERSION = 1


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        identity = identify(ctx, env)
        report = status_report(
            env,
            read_env_state(ctx, env),
            ctx.workspace_client(env),
            lambda: fetch_credentials(ctx, env, render_next=False),
            oracle=_oracle(ctx, env),
            unfinished_rotation=_unfinished_rotation(env),
        )
        creds = report.creds
        probes = None
        if args.probe:
            from provisioner.reach.verify import ProbeOptions, probe_env

            probes = probe_env(ctx, env, creds, ProbeOptions.of(args.timeout, args.parallel))
            _with_probes(report, probes)
        doc = document(report, probes)
        doc["databricksIdentity"] = identity.as_json()
        doc["dlz"] = {"backend": ctx.dlz_backend(), "probed": probes is not None}
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            _print_table(console, doc, report)
        return int(report.exit_code)


def _oracle(ctx: RunContext, env: Environment) -> Oracle | None:
    """The target's DLZ oracle for one cluster, when it has one (the sandbox)."""
    if ctx.target.dlz_access(env, {}) is None:
        return None
    return lambda cluster_id: bool((ctx.target.dlz_access(env, {cluster_id: cluster_id}) or {}).get(cluster_id))


def _with_probes(report: StatusReport, probes: list[ClusterProbe]) -> None:
    """--probe: what each running cluster's own listing of the DLZ says replaces the oracle's guess."""
    from provisioner.drift import DLZ_ORACLE_PROBLEM
    from provisioner.reach.probe import ERROR, FAILED

    by_name = {p.name: p for p in probes}
    for c in report.clusters:
        probe = by_name.get(c.name)
        if probe is None or probe.state != "RUNNING":
            continue
        c.problems = [p for p in c.problems if p != DLZ_ORACLE_PROBLEM]
        c.dlz_access = probe.reached
        if probe.outcome == FAILED:
            c.problems.append(f"cannot reach the DLZ: {probe.detail}")
        elif probe.outcome == ERROR:
            c.problems.append(f"the DLZ probe did not run: {probe.detail}")


def _unfinished_rotation(env: Environment) -> str | None:
    """The `provision rotate` marker's path when a rotation failed after its refresh (local state only)."""
    from provisioner.rotation_marker import RotationMarker

    marker = RotationMarker.of(env)
    return str(marker.path) if marker.load() is not None else None


def document(report: StatusReport, probes: list[ClusterProbe] | None = None) -> dict[str, Any]:
    """The stable --json shape (docs/status-json.md). Never a token: only dates, ids, states."""
    env, creds, secret, code = report.env, report.creds, report.secret, report.exit_code
    probed = {p.name: p for p in probes or []}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "environment": env.name,
        "status": STATUS_WORD[code],
        "exitCode": int(code),
        "rotationNeeded": None if report.replaced is None else report.replaced.reason(),
        "rotationUnfinished": report.unfinished_rotation is not None,
        "token": {
            "mode": env.sas.mode,
            "containerName": creds.container_name,
            "storageAccountName": creds.storage_account_name,
            "sparkConfKey": creds.spark_conf_key,
            "expiryDate": creds.expiry_date.isoformat(),
            "daysLeft": creds.days_left(),
            "warnDays": env.sas.warn_days,
            "expiring": creds.days_left() <= env.sas.warn_days,
        },
        "secret": None
        if secret is None
        else {
            "scope": secret.scope,
            "key": secret.key,
            "present": secret.present,
            "lastUpdated": secret.last_updated,
            "holdsCurrentToken": secret.holds_current_token,
            "problems": secret.problems,
        },
        "clusters": [
            {
                "name": c.name,
                "clusterId": c.cluster_id,
                "state": c.state,
                "sasEntry": c.sas_entry,
                "dlzAccess": c.dlz_access,
                "dlzProbe": probed[c.name].as_json() if c.name in probed else None,
                "lastStarted": c.last_started,
                "drift": c.drift,
                "problems": c.problems,
                "warnings": c.warnings,
            }
            for c in report.clusters
        ],
    }


def _print_table(console: Console, doc: dict[str, Any], report: StatusReport) -> None:
    token = doc["token"]
    console.line(
        f"environment {doc['environment']}: token expires {token['expiryDate']} ({token['daysLeft']} days left, "
        f"warning at {token['warnDays']}); mode {token['mode']}"
    )
    if report.replaced is not None:
        console.line(f"  ! ROTATION NEEDED: {report.replaced.reason()} — run `provision rotate`")
    secret = report.secret
    if secret is not None:
        console.line(f"secret {secret.scope}/{secret.key}: last written {secret.last_updated or '—'}")
        for problem in secret.problems:
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
    if doc.get("rotationUnfinished"):
        console.line("  ! a rotation failed after its refresh — finish it with `provision rotate --resume`")
    console.line(f"status: {doc['status']} (exit {doc['exitCode']})")


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")
