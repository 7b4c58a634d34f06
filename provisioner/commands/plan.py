"""`provision plan`: credentials → render → init (when needed) → plan -out, per environment
(provisioner.operations.plan).

With several environments the plans run in parallel (-j), each one's output printed as one
section (or streamed with --stream), and a combined summary ends the run. Exit code: the
worst of them (1 > 2 > 0).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provisioner.commands.options import init_options, run_context
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.operations.plan import PlanRequest, plan_environment, plan_environments
from provisioner.review.env_results import print_results, worst_exit_code
from provisioner.review.plan_summary import summary_format


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        envs = ctx.config.select(args.env, args.all_envs)
        if args.out and len(envs) != 1:
            raise ConfigError("--out names one plan file: use it with a single --env")
        if args.summary:
            summary_format(Path(args.summary))  # refused before any work
        req = PlanRequest(
            out=Path(args.out) if args.out else None,
            summary=Path(args.summary) if args.summary else None,
            init=init_options(args),
            lock_timeout=args.lock_timeout,
        )
        if len(envs) == 1:
            return plan_environment(ctx, envs[0], console, req, raise_errors=True).code
        if args.summary:
            raise ConfigError("--summary writes one environment's summary: use it with --env")
        jobs = args.jobs or os.cpu_count() or 1
        results = plan_environments(ctx, envs, console, req, jobs=jobs, stream=args.stream)
        print_results(console, results)
        return worst_exit_code(results)
