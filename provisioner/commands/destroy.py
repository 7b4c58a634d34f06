"""`provision destroy`: plan -destroy, confirm, apply — clusters are permanently deleted
(provisioner.operations.destroy). A secret scope this environment manages is kept, and named with how
to delete it once nothing uses it; so is an adopted cluster (unless --include-adopted), and a
cluster an interrupted apply created outside the state is named.
"""

from __future__ import annotations

import argparse

from provisioner.commands.options import environment_lock, run_context
from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.errors import ExitCode
from provisioner.operations.destroy import destroy_environment
from provisioner.sas.secret_value import SCOPE_ADDRESS
from provisioner.terraform import Applied


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        with environment_lock(ctx, env, args, "destroy"):
            done = destroy_environment(ctx, env, args.auto_approve, include_adopted=args.include_adopted)
        if done.applied is Applied.NO_CHANGES:
            console.ok(f"{env.name}: nothing to destroy")
        elif done.applied is Applied.DECLINED:
            console.warn("destroy cancelled; nothing changed")
            return ExitCode.ERROR
        else:
            console.ok(f"{env.name}: destroyed")
        if done.kept_scope:
            _say_kept(env, console)
        for name, cluster_id in done.kept_adopted:
            console.info(
                f"{env.name}: kept clusters.{name} ({cluster_id}), adopted (it existed before dlz-provisioner): "
                "no longer managed, still running as configured"
            )
        for stray in done.strays:
            console.warn(
                f"{env.name}: not destroyed: {stray.describe()}, created for clusters.{stray.name} by an "
                "interrupted apply, is in no Terraform state — delete it: "
                f"`databricks clusters permanent-delete {stray.cluster_id}`"
            )
        for line in done.left_in_aep:
            console.info(f"{env.name}: {line}")
        return ExitCode.OK


def _say_kept(env: Environment, console: Console) -> None:
    scope = env.sas.secret_scope
    console.info(
        f"{env.name}: kept secret scope {scope} and its secret (prevent_destroy) — once nothing uses it, delete it "
        f"with `databricks secrets delete-scope {scope}` and `terraform state rm {SCOPE_ADDRESS}` in {env.root_dir}"
    )
