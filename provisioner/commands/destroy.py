"""`provision destroy`: plan -destroy, confirm, apply — clusters are permanently deleted.

A secret scope this environment manages is kept (`prevent_destroy`: the live token is in
it, and Terraform would refuse the whole destroy): everything else is destroyed by target,
and the scope is named with how to delete it once nothing uses it.
"""

from __future__ import annotations

import argparse

from provisioner.approval import confirm, require_approval_possible
from provisioner.commands.options import run_context
from provisioner.config import Environment
from provisioner.console import Console
from provisioner.dlz_secret import SCOPE_ADDRESS, destroy_targets
from provisioner.errors import ExitCode
from provisioner.terraform import Applied, PlanOptions, plan_and_apply, read_state
from provisioner.workflow import default_plan_file, fetch_credentials, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        require_approval_possible(ctx, args.auto_approve, "destroy")
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        runner = ctx.runner(env, creds.sas_token)
        runner.init()
        targets: tuple[str, ...] = ()
        kept = env.sas.mode == "secret_scope" and env.sas.manage_scope
        if kept:
            targets = destroy_targets(read_state(runner, init=False))
            if not targets:
                console.ok(f"{env.name}: nothing to destroy")
                _say_kept(env, console)
                return ExitCode.OK
        applied = plan_and_apply(
            runner,
            PlanOptions(out=default_plan_file(env), destroy=True, targets=targets),
            lambda: confirm(ctx, args.auto_approve, f"Destroy everything environment '{env.name}' manages?"),
        )
        if applied is Applied.NO_CHANGES:
            console.ok(f"{env.name}: nothing to destroy")
        elif applied is Applied.DECLINED:
            console.warn("destroy cancelled; nothing changed")
            return ExitCode.ERROR
        else:
            console.ok(f"{env.name}: destroyed")
        if kept:
            _say_kept(env, console)
        return ExitCode.OK


def _say_kept(env: Environment, console: Console) -> None:
    scope = env.sas.secret_scope
    console.info(
        f"{env.name}: kept secret scope {scope} and its secret (prevent_destroy) — once nothing uses it, delete it "
        f"with `databricks secrets delete-scope {scope}` and `terraform state rm {SCOPE_ADDRESS}` in {env.root_dir}"
    )
