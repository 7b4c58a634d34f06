"""`provision apply [PLANFILE]`: apply a saved plan as-is, or plan then apply what was shown."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provisioner.commands._confirm import confirm, require_approval_possible
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.terraform import ApplyOptions, InitOptions, PlanOutcome
from provisioner.workflow import default_plan_file, fetch_credentials, open_context, plan_env, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        require_approval_possible(ctx, args.auto_approve, "apply")
        if args.plan_file:
            plan_file = Path(args.plan_file).resolve()
            if not plan_file.is_file():
                raise ConfigError(
                    f"{args.plan_file}: no such plan file — create one with `provision plan --out FILE`"
                )
            # A saved plan carries the token it was made with; no new credentials are fetched.
            runner = ctx.runner(env, sas=None)
            runner.init(_init_options(args))
        else:
            creds = fetch_credentials(ctx, env)
            render_env(ctx, env, creds)
            # Per process: a second apply of the same root must not overwrite or delete our plan.
            plan_file = default_plan_file(env).with_name(f"apply-{os.getpid()}.tfplan")
            outcome = plan_env(
                ctx, env, creds, plan_file, init=_init_options(args), lock_timeout=args.lock_timeout
            )
            if outcome == PlanOutcome.NO_CHANGES:
                plan_file.unlink(missing_ok=True)
                _converge(ctx, env, console)
                console.ok(f"{env.name}: no changes — nothing to apply")
                return 0
            runner = ctx.runner(env, creds.sas_token)
        if not confirm(ctx, args.auto_approve, f"Apply this plan to environment '{env.name}'?"):
            console.warn("apply cancelled; nothing changed")
            return 1
        try:
            runner.apply(ApplyOptions(plan_file=plan_file, lock_timeout=args.lock_timeout))
        finally:
            # A plan file holds the SAS token; once applied (or refused) it is of no further use.
            plan_file.unlink(missing_ok=True)
        _converge(ctx, env, console)
        console.ok(f"{env.name}: applied")
        return 0


def _init_options(args: argparse.Namespace) -> InitOptions | None:
    # Moving state between backends is never implicit: only with --migrate-state.
    return InitOptions(migrate_state=True) if args.migrate_state else None


def _converge(ctx: object, env: object, console: Console) -> None:
    """Make running clusters actually use the current token (see provisioner.converge)."""
    from provisioner.converge import converge_clusters

    converge_clusters(ctx, env, console)  # type: ignore[arg-type]
