"""`provision plan`: credentials → render → init (when needed) → plan -out, per environment.

With several environments the plans run in parallel (-j), each one's output is buffered and
printed as one section when it finishes (or streamed with an `[env]` prefix on every line
with --stream), and a combined summary ends the run. Exit code: the worst of them (1 > 2 > 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.commands.options import init_options, run_context
from provisioner.config import Environment
from provisioner.console import BufferedConsole, Console
from provisioner.env_results import EnvResult, print_results, worst_exit_code
from provisioner.errors import ConfigError, ExitCode, ProvisionError
from provisioner.terraform.process import Cancelled
from provisioner.workflow import (
    RunContext,
    default_plan_file,
    fetch_credentials,
    identify,
    plan_env,
    render_env,
)

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.expiry import TokenReplaced
    from provisioner.terraform import TerraformState

_section_lock = threading.Lock()
# Terraform documents its plugin cache as unsafe for concurrent installs: inits that may
# install providers into a shared TF_PLUGIN_CACHE_DIR run one at a time (plans stay parallel).
_plugin_cache_lock = threading.Lock()


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        envs = ctx.config.select(args.env, args.all_envs)
        if args.out and len(envs) != 1:
            raise ConfigError("--out names one plan file: use it with a single --env")
        if args.summary:
            from provisioner.plan_summary import summary_format

            summary_format(Path(args.summary))  # refused before any work
        if len(envs) == 1:
            result = _plan_one(ctx, envs[0], console, args, raise_errors=True)
            return result.code
        return _plan_many(ctx, envs, console, args)


def _plan_one(
    ctx: RunContext, env: Environment, console: Console, args: argparse.Namespace, raise_errors: bool = False
) -> EnvResult:
    started = time.monotonic()
    plan_file = Path(args.out).resolve() if args.out else default_plan_file(env)
    # Every line of this environment — ours (render, init) and Terraform's — goes to `console`.
    ctx = dataclasses.replace(ctx, console=console)
    try:
        identify(ctx, env)  # Terraform gets the same identity, its auth type pinned
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        outcome = plan_env(
            ctx,
            env,
            creds,
            plan_file,
            console,
            init=init_options(args),
            lock_timeout=args.lock_timeout,
            init_lock=_plugin_cache_lock if ctx.target.shares_plugin_cache() else None,
        )
        secret_write = False
        holds_current: bool | None = None
        if env.sas.mode == "secret_scope":
            # The value is not Terraform's: check the scope and say whether apply will write it.
            from provisioner import secret_apply

            found = secret_apply.check(ctx, env, creds, ctx.runner(env, None, console))
            secret_apply.report(env, found, console)
            secret_write = found.needs_write
            if secret_write:
                outcome = ExitCode.CHANGES  # apply has something to do
            if found.freshness is not None and found.freshness.present:
                holds_current = found.freshness.holds_current
        if env.sas.mode == "secret_scope":
            from provisioner.databricks.ownership import check_owners_can_read

            check_owners_can_read(ctx.workspace_client(env), env, _planned_on(plan_file).clusters(), console.warn)
        replaced = _token_replaced(env, creds, plan_file, holds_current)
        if replaced is not None:
            console.warn(
                f"{env.name}: ROTATION NEEDED — {replaced.reason()}; applying this plan "
                "(or `provision rotate`) puts AEP's current token live"
            )
        if args.summary:
            from provisioner.plan_summary import write_summary

            reason = None if replaced is None else replaced.reason()
            write_summary(
                ctx,
                env,
                creds,
                plan_file,
                Path(args.summary),
                console,
                secret_write=secret_write,
                rotation_needed=reason,
            )
        if outcome is ExitCode.CHANGES:
            console.info(f"{env.name}: changes planned; saved plan {plan_file}")
        else:
            console.ok(f"{env.name}: no changes")
        return EnvResult(env.name, outcome, time.monotonic() - started)
    except Cancelled:
        raise
    except ProvisionError as exc:
        if args.summary:
            from provisioner.plan_summary import write_failed_summary

            # The review must name the failure, not miss the environment.
            write_failed_summary(env.name, str(exc).replace(f" in {env.root_dir}", ""), Path(args.summary))
        if raise_errors:
            raise
        console.error(str(exc))
        return EnvResult(env.name, ExitCode.ERROR, time.monotonic() - started, _short(exc, env))


def _planned_on(plan_file: Path) -> TerraformState:
    """The state the plan was made on, read from the plan file (no extra terraform run)."""
    from provisioner.terraform import TerraformState
    from provisioner.terraform.planfile import prior_state

    return TerraformState(prior_state(plan_file))


def _token_replaced(
    env: Environment, creds: DlzCredentials, plan_file: Path, secret_holds_current: bool | None
) -> TokenReplaced | None:
    """Compared against the state the plan was made on (read from the plan file: no extra terraform run)
    and, in secret_scope mode, what the workspace says about the secret."""
    from provisioner.expiry import token_replaced

    return token_replaced(_planned_on(plan_file), env, creds, secret_holds_current=secret_holds_current)


def _short(exc: ProvisionError, env: Environment) -> str:
    """The what of an error, for its summary row: the row already names the environment."""
    return str(exc).split(" — ")[0].replace(f" in {env.root_dir}", "").replace(f" {env.root_dir}", "")[:200]


def _plan_many(ctx: RunContext, envs: list[Environment], console: Console, args: argparse.Namespace) -> int:
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    if args.summary:
        raise ConfigError("--summary writes one environment's summary: use it with --env")
    _warm_up(ctx)

    def work(env: Environment) -> EnvResult:
        if args.stream:
            return _plan_one(ctx, env, console.prefixed(f"[{env.name}] "), args)
        buffer = BufferedConsole(color=console.color)
        try:
            return _plan_one(ctx, env, buffer, args)
        finally:
            # One uninterrupted section per environment, in completion order.
            with _section_lock:
                console.line(console.paint(f"── {env.name} " + "─" * 40, "bold"))
                buffer.flush_to(console)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="plan") as pool:
        results = list(pool.map(work, envs))
    print_results(console, results)
    return worst_exit_code(results)


def _warm_up(ctx: RunContext) -> None:
    """Do once, before the threads start, what every environment would otherwise race to do."""
    ctx.terraform_binary()
    ctx.target.terraform_env()  # e.g. builds the sandbox's provider mirror, shared by all roots
