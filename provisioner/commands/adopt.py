"""`provision adopt --cluster-id ID`: bring an existing all-purpose cluster under management in place.

Reads the cluster (`clusters/get`), appends its entry — with `import_id: <cluster id>` — to the
right `clusters:` list of provision.yaml and renders the root, whose `imports.tf` then holds an
`import {}` block. The next plan shows the import plus the DLZ SAS entry, nothing destructive.
The work lives in `provisioner.adoption`.
"""

from __future__ import annotations

import argparse

from provisioner.adoption import append_to_config, cluster_block, is_pinned, name_from, read_cluster, refuse_managed
from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.workflow import fetch_credentials, reload_config, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        info = read_cluster(ctx, env, args.cluster_id)
        refuse_managed(ctx, env, args.cluster_id)
        name = args.name or name_from(info)
        # It is about to reference the SAS secret: its owner must be able to read it.
        check_owners_can_read(ctx.workspace_client(env), env, {name: args.cluster_id}, console.warn, ctx.identity(env))
        pinned = is_pinned(ctx.workspace_client(env), args.cluster_id)
        block = cluster_block(info, name, env, pinned)
        append_to_config(ctx.config.path, env, block)
        console.ok(f"{env.name}: added cluster '{block['name']}' ({args.cluster_id}) to {ctx.config.path}")
        # Reload so the rendered root (imports.tf) includes the new cluster.
        fresh = reload_config(ctx)
        new_env = fresh.environments[env.name]
        render_env(ctx, new_env, fetch_credentials(ctx, new_env))
        if not pinned:
            console.warn(
                f"{block['name']} is not pinned and stays so (is_pinned: false): Databricks deletes an unpinned "
                "cluster 30 days after it terminates — remove that line to pin it"
            )
        console.info(
            f"next: `provision plan{'' if len(fresh.environments) == 1 else ' --env ' + env.name}` shows the import "
            "and the spark_conf change (the DLZ SAS entry) — nothing is recreated"
        )
        return 0
