"""`provision adopt --cluster-id ID`: bring an existing all-purpose cluster under management in place.

Reads the cluster (`clusters/get`), appends its entry — with `import_id: <cluster id>` — to the
right `clusters:` list of provision.yaml and renders the root, whose `imports.tf` then holds an
`import {}` block. The next plan shows the import plus the DLZ SAS entry, nothing destructive.
The work lives in `provisioner.operations.adopt`.
"""

from __future__ import annotations

import argparse

from provisioner.commands.options import environment_lock, run_context
from provisioner.console import Console
from provisioner.operations.adopt import adopt_into_config, render_adopted


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        with environment_lock(ctx, env, args, "adopt"):
            adopted = adopt_into_config(ctx, env, args.cluster_id, args.name, console.warn)
            console.ok(f"{env.name}: added cluster '{adopted.name}' ({adopted.cluster_id}) to {ctx.config.path}")
            fresh = render_adopted(ctx, env)
        if not adopted.pinned:
            console.warn(
                f"{adopted.name} is not pinned and stays so (is_pinned: false): Databricks deletes an unpinned "
                "cluster 30 days after it terminates — remove that line to pin it"
            )
        console.info(
            f"next: `provision plan{'' if len(fresh.environments) == 1 else ' --env ' + env.name}` shows the import "
            "and the spark_conf change (the DLZ SAS entry) — nothing is recreated"
        )
        return 0
