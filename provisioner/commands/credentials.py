"""`provision credentials`: where the DLZ is and when its token expires — never the token."""

from __future__ import annotations

import argparse
import json

from provisioner.commands.options import run_context
from provisioner.console import Console
from provisioner.run.context import fetch_credentials


def run(args: argparse.Namespace, console: Console) -> int:
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        creds = fetch_credentials(ctx, env, render_next=False)
        doc = {
            "environment": env.name,
            "sandbox": env.aep.sandbox,
            **creds.as_json(),
        }
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            for key, value in doc.items():
                console.line(f"{key:<19} {value}")
            console.line(f"{'SASToken':<19} {creds.masked_token()}")
        return 0
