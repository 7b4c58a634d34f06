"""`provision envs [--json] [--changed-since REF]`: the environments as a CI matrix."""

from __future__ import annotations

import argparse
import json
import os

from provisioner.config.model import load_config
from provisioner.console import Console
from provisioner.operations.envs import EnvRow, azure_devops_matrix, changed_since, github_matrix, rows


def run(args: argparse.Namespace, console: Console) -> int:
    # No credentials and no sandbox: which environments there are is a question about files.
    config = load_config(args.config, environ=dict(os.environ))
    envs = list(config.environments.values())
    if args.changed_since:
        envs = changed_since(config, args.changed_since, dict(os.environ))
    table = rows(envs)
    if args.json:
        doc = azure_devops_matrix(table) if args.matrix == "azure-devops" else github_matrix(table)
        # One line: CI systems read it from a single output variable.
        console.result(json.dumps(doc, sort_keys=True, separators=(",", ":")))
        return 0
    if not table:
        console.info("no environment is affected" + (f" since {args.changed_since}" if args.changed_since else ""))
        return 0
    columns = _columns(table)
    widths = [max(len(h), *(len(v) for v in col)) for h, col in columns]
    lines = [[h for h, _ in columns], *([r.env, r.aep_sandbox, r.workspace_host, r.backend] for r in table)]
    for line in lines:
        console.line("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _columns(table: list[EnvRow]) -> list[tuple[str, list[str]]]:
    return [
        ("ENV", [r.env for r in table]),
        ("AEP SANDBOX", [r.aep_sandbox for r in table]),
        ("WORKSPACE", [r.workspace_host for r in table]),
        ("BACKEND", [r.backend for r in table]),
    ]
