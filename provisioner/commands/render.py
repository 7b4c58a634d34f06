"""`provision render`: write terraform/<env>/ (or, with --check, say whether it is up to date)."""

from __future__ import annotations

import argparse

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.errors import ProvisionError
from provisioner.git import tracked_secret_bearing
from provisioner.render import DlzTarget, diff_root, render_all, write_root
from provisioner.workflow import fetch_credentials, with_policies


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        envs = [with_policies(ctx, env) for env in ctx.config.select(args.env, args.all_envs)]
        targets = {}
        for env in envs:
            creds = fetch_credentials(ctx, env)
            targets[env.name] = DlzTarget(creds.container_name, creds.storage_account_name)
        # Everything is rendered in memory before anything is written.
        roots = render_all(envs, targets, ctx.config.path)
        if args.check:
            stale = {r.root: diff_root(r) for r in roots}
            stale = {root: files for root, files in stale.items() if files}
            if stale:
                where = "; ".join(f"{root}: {', '.join(files)}" for root, files in stale.items())
                raise ProvisionError(f"generated roots are out of date ({where}) — run `provision render` and commit")
            committed = [path for r in roots for path in tracked_secret_bearing(r.root)]
            if committed:
                raise ProvisionError(
                    f"git tracks {', '.join(str(p) for p in committed)}, which holds the DLZ SAS token — "
                    "`git rm --cached` it (the generated .gitignore keeps it out from now on), "
                    "purge it from the history and rotate the token (`provision rotate`)"
                )
            console.ok(f"{len(roots)} root(s) up to date")
            return 0
        for rendered in roots:
            written = write_root(rendered)
            console.ok(f"{rendered.root}: {'wrote ' + ', '.join(written) if written else 'unchanged'}")
        return 0
