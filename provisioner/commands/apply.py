"""`provision apply [PLANFILE]`: apply a saved plan as-is, or plan then apply what was shown."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provisioner.commands._confirm import confirm, require_approval_possible
from provisioner.config import Environment
from provisioner.console import Console
from provisioner.converge import converge_clusters
from provisioner.errors import ConfigError
from provisioner.rotation_marker import RotationMarker
from provisioner.terraform import ApplyOptions, InitOptions, PlanOutcome
from provisioner.workflow import RunContext, default_plan_file, fetch_credentials, open_context, plan_env, render_env


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        require_approval_possible(ctx, args.auto_approve, "apply")
        if args.plan_file:
            plan_file = Path(args.plan_file).resolve()
            if not plan_file.is_file():
                raise ConfigError(f"{args.plan_file}: no such plan file — create one with `provision plan --out FILE`")
            # A saved plan carries the token it was made with; no new credentials are fetched.
            runner = ctx.runner(env, sas=None)
            runner.init(_init_options(args))
        else:
            creds = fetch_credentials(ctx, env)
            render_env(ctx, env, creds)
            # Per process: a second apply of the same root must not overwrite or delete our plan.
            plan_file = default_plan_file(env).with_name(f"apply-{os.getpid()}.tfplan")
            outcome = plan_env(ctx, env, creds, plan_file, init=_init_options(args), lock_timeout=args.lock_timeout)
            if outcome == PlanOutcome.NO_CHANGES:
                plan_file.unlink(missing_ok=True)
                _converge(ctx, env, console, fresh_credentials=True)
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
        _converge(ctx, env, console, fresh_credentials=not args.plan_file)
        console.ok(f"{env.name}: applied")
        return 0


def _init_options(args: argparse.Namespace) -> InitOptions | None:
    # Moving state between backends is never implicit: only with --migrate-state.
    return InitOptions(migrate_state=True) if args.migrate_state else None


def _converge(ctx: RunContext, env: Environment, console: Console, *, fresh_credentials: bool) -> None:
    """Make running clusters actually use the current token (see provisioner.converge).

    Applied with the token AEP hands out now, this also finishes a rotation that failed
    after its refresh; a saved plan may predate that refresh, so it leaves the marker.
    """
    converge_clusters(ctx, env, console)
    if fresh_credentials:
        RotationMarker.of(env).clear()
