"""What several commands read from their parsed options, read in one place: the argparse
namespace ends here, and what goes further down is typed."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.lock.environment import seconds
from provisioner.lock.holder import Holder
from provisioner.run.context import RunContext, open_context
from provisioner.run.env_lock import hold_environment
from provisioner.terraform import InitOptions


def run_context(args: argparse.Namespace, console: Console) -> AbstractContextManager[RunContext]:
    """The run's context from the global options (--config, --sandbox, --debug), with the
    keeper `main` started early for a command that runs Terraform (provisioner/run/early.py)."""
    early = getattr(args, "early_keeper", None)
    return open_context(args.config, console, sandbox=args.sandbox, debug=args.debug, early_keeper=early)


def init_options(args: argparse.Namespace) -> InitOptions | None:
    """Moving state between backends is never implicit: only with --migrate-state."""
    if not args.migrate_state:
        return None
    return InitOptions(migrate_state=True)


def environment_lock(
    ctx: RunContext, env: Environment, args: argparse.Namespace, command: str
) -> AbstractContextManager[Holder | None]:
    """The environment's lock for a command that changes it, waiting up to --lock-timeout
    (provisioner.lock.environment); yields whom it waited for (None: it was free)."""
    return hold_environment(ctx, env, command, seconds(args.lock_timeout))
