"""`provision verify`: can the landing zone be reached — from here with AEP's token, and from every running cluster?"""

from __future__ import annotations

import argparse
import json

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.operations import connection_token
from provisioner.operations.verify import DRIFT, EXPIRING, ProbeOptions, Verification, verify_env
from provisioner.reach.probe import FAILED, REACHED, SKIPPED
from provisioner.run.context import fetch_credentials, read_env_state
from provisioner.run.warmup import in_thread


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        # One state read (issue 24) for the probes and the connections, beside AEP's answer.
        state = in_thread(lambda: read_env_state(ctx, env), "state")
        creds = fetch_credentials(ctx, env)
        clusters = state().clusters()
        result = verify_env(ctx, env, creds, ProbeOptions.of(args.timeout, args.parallel), clusters)
        doc = result.as_json(creds, env.sas.warn_days)
        connections = connection_token.check_connections(ctx, env, clusters)
        doc["aepConnections"] = [c.as_json() for c in connections]
        if any(c.outcome == connection_token.FAILED for c in connections) and doc["exitCode"] in (0, EXPIRING):
            doc["exitCode"], doc["status"] = DRIFT, "unreachable"
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            _print(console, result, doc)
        return int(doc["exitCode"])


def _print(console: Console, result: Verification, doc: dict[str, object]) -> None:
    dlz = doc["dlz"]
    assert isinstance(dlz, dict)
    console.line(
        f"environment {result.environment}: container {dlz['containerName']} in {dlz['storageAccountName']} "
        f"({dlz['backend']}); token expires {dlz['expiryDate']} ({dlz['daysLeft']} days left)"
    )
    if result.host is not None:
        console.line(f"from this host: {'ok' if result.host.ok else 'FAILED'} — {result.host.detail}")
    word = {REACHED: "yes", FAILED: "NO", SKIPPED: "—"}
    rows = [("CLUSTER", "ID", "STATE", "DLZ", "SECONDS")] + [
        (c.name, c.cluster_id or "—", c.state, word.get(c.outcome, "?"), f"{c.seconds:.1f}") for c in result.clusters
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for c in result.clusters:
        if c.outcome != REACHED:
            console.line(f"  {'!' if c.outcome != SKIPPED else '·'} {c.name}: {c.detail}")
    console.line(result.summary())
    checks = doc["aepConnections"]
    assert isinstance(checks, list)
    for check in checks:
        said = {True: "works", False: "FAILS"}.get(check["works"], "not proven")
        console.line(f"AEP connection {check['connectionId']} ({check['cluster']}): {said} — {check['detail']}")
    console.line(f"verify: {doc['status']} (exit {doc['exitCode']})")
