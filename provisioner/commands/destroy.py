"""`provision destroy`: plan -destroy, confirm, apply — clusters are permanently deleted."""

from __future__ import annotations

import argparse

from provisioner.commands._confirm import confirm, require_approval_possible
from provisioner.console import Console
from provisioner.terraform import ApplyOptions, PlanOptions, PlanOutcome
from provisioner.workflow import default_plan_file, fetch_credentials, open_context, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        require_approval_possible(ctx, args.auto_approve, "destroy")
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        runner = ctx.runner(env, creds.sas_token)
        runner.init()
        plan_file = default_plan_file(env)
        try:
            if runner.plan(PlanOptions(out=plan_file, destroy=True)) == PlanOutcome.NO_CHANGES:
                console.ok(f"{env.name}: nothing to destroy")
                return 0
            if not confirm(ctx, args.auto_approve, f"Destroy everything environment '{env.name}' manages?"):
                console.warn("destroy cancelled; nothing changed")
                return 1
            runner.apply(ApplyOptions(plan_file=plan_file))
        finally:
            plan_file.unlink(missing_ok=True)
        console.ok(f"{env.name}: destroyed")
        return 0
