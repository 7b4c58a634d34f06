"""`provision plan`: credentials → render → init (when needed) → plan -out, per environment.

With several environments the plans run in parallel (-j), each one's output is buffered and
printed as one section when it finishes (or streamed with an `[env]` prefix on every line
with --stream), and a combined summary ends the run. Exit code: the worst of them (1 > 2 > 0).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provisioner.config import Environment
from provisioner.console import BufferedConsole, Console
from provisioner.errors import ConfigError, ProvisionError
from provisioner.report import EnvResult, print_summary, worst_exit_code
from provisioner.terraform.process import Cancelled
from provisioner.workflow import RunContext, default_plan_file, fetch_credentials, open_context, plan_env, render_env


_section_lock = threading.Lock()


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        envs = ctx.config.select(args.env, args.all_envs)
        if args.out and len(envs) != 1:
            raise ConfigError("--out names one plan file: use it with a single --env")
        if len(envs) == 1:
            result = _plan_one(ctx, envs[0], console, args, raise_errors=True)
            return result.code
        return _plan_many(ctx, envs, console, args)


def _plan_one(
    ctx: RunContext, env: Environment, console: Console, args: argparse.Namespace, raise_errors: bool = False
) -> EnvResult:
    started = time.monotonic()
    plan_file = Path(args.out).resolve() if args.out else default_plan_file(env)
    try:
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        outcome = plan_env(ctx, env, creds, plan_file, console)
        if args.summary:
            from provisioner.summary import write_summary

            write_summary(ctx, env, creds, plan_file, Path(args.summary), console)
        if outcome == 2:
            console.info(f"{env.name}: changes planned; saved plan {plan_file} (apply with `provision apply`)")
        else:
            console.ok(f"{env.name}: no changes")
        return EnvResult(env.name, int(outcome), time.monotonic() - started)
    except Cancelled:
        raise
    except ProvisionError as exc:
        if raise_errors:
            raise
        console.error(str(exc))
        return EnvResult(env.name, 1, time.monotonic() - started, str(exc).split(" — ")[0][:120])


def _plan_many(ctx: RunContext, envs: list[Environment], console: Console, args: argparse.Namespace) -> int:
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    if args.summary:
        raise ConfigError("--summary writes one environment's summary: use it with --env")

    def work(env: Environment) -> EnvResult:
        if args.stream:
            return _plan_one(ctx, env, Console(console.out, console.err, color=console.color, prefix=f"[{env.name}] "), args)
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
    print_summary(console, results)
    return worst_exit_code(results)
