"""`provision connect`: the AEP base connection for a managed cluster — found if it exists,
repointed if it follows a re-created cluster, else created (provisioner.operations.connect)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.operations.connect import connect_cluster


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        done = connect_cluster(
            ctx, env, args.cluster, console, timeout=args.timeout, database=args.database, catalog=args.catalog
        )
        doc: dict[str, Any] = {
            "environment": env.name,
            "cluster": done.cluster,
            "clusterId": done.cluster_id,
            "domain": env.databricks_host,
            "connectionId": done.connection_id,
            "created": done.created,
            "repointed": done.repointed,
        }
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            verb = "created" if done.created else "repointed to it" if done.repointed else "already exists, reused"
            console.ok(f"{env.name}: base connection for {done.cluster} ({done.cluster_id}) {verb}")
            console.line(done.connection_id)
        return 0
