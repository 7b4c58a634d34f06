"""`provision destroy`: plan -destroy, confirm, apply — clusters are permanently deleted."""

from __future__ import annotations

import argparse

from provisioner.commands._confirm import confirm, require_approval_possible
from provisioner.console import Console
from provisioner.errors import ExitCode
from provisioner.terraform import Applied, PlanOptions, plan_and_apply
from provisioner.workflow import default_plan_file, fetch_credentials, open_context, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        require_approval_possible(ctx, args.auto_approve, "destroy")
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        runner = ctx.runner(env, creds.sas_token)
        runner.init()
        applied = plan_and_apply(
            runner,
            PlanOptions(out=default_plan_file(env), destroy=True),
            lambda: confirm(ctx, args.auto_approve, f"Destroy everything environment '{env.name}' manages?"),
        )
        if applied is Applied.NO_CHANGES:
            console.ok(f"{env.name}: nothing to destroy")
        elif applied is Applied.DECLINED:
            console.warn("destroy cancelled; nothing changed")
            return ExitCode.ERROR
        else:
            console.ok(f"{env.name}: destroyed")
        return ExitCode.OK
