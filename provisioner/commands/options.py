"""What several commands read from their parsed options, read in one place: the argparse
namespace ends here, and what goes further down is typed."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager

from provisioner.console import Console
from provisioner.run.context import RunContext, open_context
from provisioner.terraform import InitOptions


def run_context(args: argparse.Namespace, console: Console) -> AbstractContextManager[RunContext]:
    """The run's context from the global options (--config, --sandbox, --debug)."""
    return open_context(args.config, console, sandbox=args.sandbox, debug=args.debug)


def init_options(args: argparse.Namespace) -> InitOptions | None:
    """Moving state between backends is never implicit: only with --migrate-state."""
    if not args.migrate_state:
        return None
    return InitOptions(migrate_state=True)
