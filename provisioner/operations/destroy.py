"""`provision destroy`'s work: plan -destroy → confirm → apply — clusters are permanently deleted.

A secret scope this environment manages is kept (`prevent_destroy`: the live token is in it,
and Terraform would refuse the whole destroy): everything else is destroyed by target
(provisioner.sas.scope_secret.destroy_targets).
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.config.model import Environment
from provisioner.run.approval import confirm, require_approval_possible
from provisioner.run.context import RunContext, default_plan_file, fetch_credentials, render_env
from provisioner.sas.scope_secret import destroy_targets
from provisioner.terraform import Applied, PlanOptions, plan_and_apply, read_state


@dataclass(frozen=True)
class Destroyed:
    applied: Applied  # NO_CHANGES: nothing to destroy; DECLINED: nothing changed
    kept_scope: bool  # the managed secret scope was left in place


def destroy_environment(ctx: RunContext, env: Environment, auto_approve: bool) -> Destroyed:
    require_approval_possible(ctx, auto_approve, "destroy")
    creds = fetch_credentials(ctx, env)
    render_env(ctx, env, creds)
    runner = ctx.runner(env, creds.sas_token)
    runner.init()
    targets: tuple[str, ...] = ()
    kept = env.sas.mode == "secret_scope" and env.sas.manage_scope
    if kept:
        targets = destroy_targets(read_state(runner, init=False))
        if not targets:
            return Destroyed(Applied.NO_CHANGES, kept_scope=True)
    # The scope is kept: the question must not promise more than the targeted destroy does.
    but = f" but secret scope {env.sas.secret_scope}, which is kept" if kept else ""
    applied = plan_and_apply(
        runner,
        PlanOptions(out=default_plan_file(env), destroy=True, targets=targets),
        lambda: confirm(ctx, auto_approve, f"Destroy everything environment '{env.name}' manages{but}?"),
    )
    return Destroyed(applied, kept_scope=kept)
