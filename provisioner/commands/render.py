"""`provision render`: write terraform/<env>/ (or, with --check, say whether it is up to date)."""

from __future__ import annotations

import argparse

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.render.root import DlzTarget, RenderedRoot, check_up_to_date, render_all, user_files, write_root
from provisioner.run.context import fetch_credentials, with_pins, with_policies


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        envs = [with_pins(ctx, with_policies(ctx, env)) for env in ctx.config.select(args.env, args.all_envs)]
        targets = {}
        for env in envs:
            creds = fetch_credentials(ctx, env)
            targets[env.name] = DlzTarget(creds.container_name, creds.storage_account_name)
        # Everything is rendered in memory before anything is written.
        roots = render_all(envs, targets, ctx.config.path)
        if args.check:
            check_up_to_date(roots)
            console.ok(f"{len(roots)} root(s) up to date")
            _report_user_files(roots, console, "not generated, so not checked")
            return 0
        for rendered in roots:
            written = write_root(rendered)
            console.ok(f"{rendered.root}: {'wrote ' + ', '.join(written) if written else 'unchanged'}")
        _report_user_files(roots, console, "not generated, left as they are")
        return 0


def _report_user_files(roots: list[RenderedRoot], console: Console, what: str) -> None:
    for rendered in roots:
        mine = user_files(rendered.root)
        if mine:
            console.line(f"{rendered.root}: your own files ({what}): {', '.join(mine)}")
