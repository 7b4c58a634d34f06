"""`provision apply [PLANFILE | --reviewed SUMMARY.json]`: apply a saved plan as-is, or plan then
apply what was shown — with --reviewed, only the change set a reviewer approved
(provisioner.operations.apply); then prove the clusters reach the DLZ (unless --no-verify)."""

from __future__ import annotations

import argparse
from pathlib import Path

from provisioner.commands.options import environment_lock, init_options, run_context
from provisioner.console import Console
from provisioner.errors import ConfigError, ExitCode
from provisioner.operations.apply import ApplyRequest, SavedPlan, apply_environment
from provisioner.operations.verify import prove_after
from provisioner.review.plan_review import ReviewedPlan
from provisioner.terraform import Applied


def run(args: argparse.Namespace, console: Console) -> int:
    reviewed = _reviewed(args)
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env or (reviewed.environment if reviewed else None))
        if reviewed is not None and reviewed.environment != env.name:
            raise ConfigError(f"{args.reviewed}: reviews environment {reviewed.environment}, not {env.name}")
        req = ApplyRequest(
            auto_approve=args.auto_approve,
            timeout=args.timeout,
            saved=_saved_plan(args),
            reviewed=reviewed,
            init=init_options(args),
            lock_timeout=args.lock_timeout,
            warm_dlz=not args.no_verify,
        )
        with environment_lock(ctx, env, args, "apply"):
            result = apply_environment(ctx, env, console, req)
            applied = result.applied
            if applied is Applied.DECLINED:
                console.warn("apply cancelled; nothing changed")
                return ExitCode.ERROR
            if applied is Applied.NO_CHANGES:
                console.ok(f"{env.name}: no changes — nothing to apply")
            else:
                console.ok(f"{env.name}: applied")
            return prove_after(ctx, env, console, ExitCode.OK, skip=args.no_verify, clusters=result.state.clusters())


def _reviewed(args: argparse.Namespace) -> ReviewedPlan | None:
    if not args.reviewed:
        return None
    if args.plan_file:
        raise ConfigError("apply: give a reviewed summary (--reviewed) or a saved PLANFILE, not both")
    return ReviewedPlan.load(Path(args.reviewed))


def _saved_plan(args: argparse.Namespace) -> SavedPlan | None:
    if not args.plan_file:
        return None
    path = Path(args.plan_file).resolve()
    if not path.is_file():
        raise ConfigError(f"{args.plan_file}: no such plan file — create one with `provision plan --out FILE`")
    return SavedPlan(path, args.plan_file)
