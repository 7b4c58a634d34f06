"""`provision sandbox serve|reset|refresh|expire`: poke the offline sandbox by hand."""

from __future__ import annotations

import argparse
import shutil
import time

from provisioner.config.model import load_config
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.run.context import sandbox_dir


def run(args: argparse.Namespace, console: Console) -> int:
    import os

    config = load_config(args.config, environ={})
    state_dir = sandbox_dir(config.path, os.environ)
    if args.action == "reset":
        shutil.rmtree(state_dir, ignore_errors=True)
        console.ok(f"sandbox state wiped ({state_dir})")
        return 0
    if args.action == "refresh":
        from provisioner.sandbox.store import SandboxStore

        (env,) = config.select(args.env)
        body = SandboxStore(state_dir).refresh_dlz(env.aep.org_id, env.aep.sandbox)
        console.ok(
            f"refreshed the DLZ token of AEP sandbox '{env.aep.sandbox}' outside the tool "
            f"(new expiry {body['expiryDate']}); the previous token is revoked"
        )
        return 0
    if args.action == "expire":
        from provisioner.sandbox.store import SandboxStore

        (env,) = config.select(args.env)
        try:
            SandboxStore(state_dir).expire_dlz(env.aep.org_id, env.aep.sandbox)
        except KeyError:
            raise ConfigError(
                f"{env.name}: AEP sandbox '{env.aep.sandbox}' has no DLZ token yet — run a command with --sandbox first"
            ) from None
        console.ok(
            f"the DLZ token of AEP sandbox '{env.aep.sandbox}' is now past its expiry date: the next credentials "
            "GET (any plan, status, rotate) makes AEP issue a new one and revoke it"
        )
        return 0
    from provisioner.sandbox import SERVER_ENV
    from provisioner.sandbox.target import sandbox_for

    # `serve` always serves: it is what the variable points other commands at.
    environ = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
    with sandbox_for(config, state_dir, environ) as sb:
        console.line(f"AEP + IMS:  {sb.platform_url}")
        for host, url in sorted(sb.hosts().items()):
            if host.startswith("https://"):
                console.line(f"workspace:  {host} -> {url}")
        for host, url in sorted(sb.blob_hosts().items()):
            console.line(f"storage:    {host} -> {url} ({sb.dlz.describe()})")
        console.line(f"state:      {state_dir}")
        console.line(f"share:      export {SERVER_ENV}={sb.base_url}  (other commands' --sandbox then use this server)")
        console.line(
            "secrets:    export AEP_CLIENT_SECRET and DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/_SECRET "
            "before `serve` to choose them"
        )
        console.line("Ctrl-C stops the sandbox.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
