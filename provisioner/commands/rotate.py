"""`provision rotate`: refresh the DLZ SAS token and put it live on every cluster.

The work lives in `provisioner.operations.rotate`."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex

from provisioner.commands.options import environment_lock, run_context
from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.operations.rotate.journal import finished_since
from provisioner.operations.rotate.preflight import Rotation
from provisioner.operations.rotate.rotation import Rotated, resume, rotate
from provisioner.operations.verify import prove_after
from provisioner.run.approval import require_approval_possible


def recovery_command(args: argparse.Namespace, env: Environment) -> str:
    """The exact command that finishes this rotation without another refresh."""
    parts = ["provision", "rotate", "--resume", "--env", env.name]
    if args.config != "provision.yaml":
        parts += ["--config", args.config]
    if args.sandbox:
        parts.append("--sandbox")
    if getattr(args, "auto_approve", False):  # `status` names this command too, and has no such option
        parts.append("--auto-approve")
    return shlex.join(parts)


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        req = Rotation(env, args.auto_approve, args.timeout, recovery_command(args, env))
        # Any rotation may come to a question (even --if-expiring-within, on the day it is due):
        # without a terminal to ask on, refuse now, before identity, AEP or workspace calls.
        require_approval_possible(ctx, args.auto_approve, "resume the rotation" if args.resume else "rotate")
        if not args.no_verify:
            ctx.warm_dlz()  # the closing probe needs the DLZ; let it start while the rotation runs
        asked_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with environment_lock(ctx, env, args, "rotate --resume" if args.resume else "rotate") as waited_for:
            if args.resume:
                done = resume(ctx, req, console)
            elif waited_for is not None and (meanwhile := finished_since(ctx, env, asked_at)) is not None:
                # The rotation asked for happened while this run waited: a second refresh would
                # only revoke the token just put live.
                console.ok(f"{env.name}: {meanwhile} while this run waited for the lock — not rotating again")
                done = Rotated(0)  # the closing probe reads the state: this run read nothing yet
            else:
                done = rotate(ctx, req, console, args.if_expiring_within)
            return prove_after(ctx, env, console, done.code, skip=args.no_verify, clusters=done.clusters)
