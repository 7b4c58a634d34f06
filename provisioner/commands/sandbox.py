"""`provision sandbox serve|env|reset|refresh|expire|expire-connection-token`: run and poke the sandbox by hand."""

from __future__ import annotations

import argparse
import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config.model import Config, load_config
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.run.context import sandbox_dir

if TYPE_CHECKING:
    from provisioner.sandbox.store import SandboxStore


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
    if args.action == "expire-connection-token":
        from provisioner.operations.connection_token import TOOL
        from provisioner.sandbox.store import SandboxStore

        (env,) = config.select(args.env)
        store = SandboxStore(state_dir)
        # The comment every connection token of this environment carries (connection_token.token_comment).
        expired = store.expire_pats(f"(environment {env.name})")
        _expire_records(store, set(expired))
        if not expired:
            raise ConfigError(
                f"{env.name}: the sandbox has no valid {TOOL} connection token for this environment — "
                "run `provision connect --sandbox` first"
            )
        console.ok(
            f"{len(expired)} AEP connection token(s) of environment {env.name} are now past their expiry: the "
            "workspace answers 403 to them and AEP can no longer read the cluster"
        )
        return 0
    if args.action == "env":
        return _env(args, config, state_dir, console)
    return _serve(args, config, state_dir, console)


def _serve(args: argparse.Namespace, config: Config, state_dir: Path, console: Console) -> int:
    import os

    from provisioner.sandbox import SERVER_ENV
    from provisioner.sandbox.outside import Served, publish, withdraw
    from provisioner.sandbox.target import sandbox_for

    # `serve` always serves: it is what the variable points other commands at.
    environ = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
    try:
        running = sandbox_for(config, state_dir, environ, port=args.port, workspace_ports=True)
        sb = running.__enter__()
    except OSError as exc:
        raise ConfigError(f"--port {args.port}: cannot listen there ({exc.strerror}) — choose another port") from None
    # Ctrl-C only sets this from here on: a KeyboardInterrupt raised wherever the main thread is
    # (inside a lock the sandbox's shutdown then waits for) could hang the stop it asks for.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        token = sb.supplied_credentials.get("DATABRICKS_TOKEN")
        own = {host: sb.workspace_root_url(host) for host in sb.workspace_hosts}
        served = Served(
            pid=os.getpid(),
            platform_url=sb.platform_url,
            workspaces={host: url for host, url in own.items() if url is not None},
            terraform_env=sb.terraform_env(),
            token_file=None,
        )
        directory = publish(state_dir, served, token.reveal() if token is not None else None)
        console.line(f"AEP + IMS:  {sb.platform_url}")
        for host in sb.workspace_hosts:
            console.line(f"workspace:  {host} -> {own[host]} (also {sb.workspace_url(host)})")
        for host, url in sorted(sb.blob_hosts().items()):
            console.line(f"storage:    {host} -> {url} ({sb.dlz.describe()})")
        console.line(f"state:      {state_dir}")
        console.line(f"share:      export {SERVER_ENV}={sb.base_url}  (other commands' --sandbox then use this server)")
        console.line(
            "secrets:    export AEP_CLIENT_SECRET and DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/_SECRET "
            "before `serve` to choose them"
        )
        console.line('clients:    eval "$(provision sandbox env --env <name>)" in another shell')
        console.line("Ctrl-C stops the sandbox.")
        try:
            stop.wait()
            return 0
        finally:
            withdraw(directory)
    finally:
        signal.signal(signal.SIGINT, previous)
        running.__exit__(None, None, None)


def _env(args: argparse.Namespace, config: Config, state_dir: Path, console: Console) -> int:
    from provisioner.sandbox.outside import exports, read_served

    served = read_served(state_dir)
    host: str | None = None
    if args.env is not None:
        (env,) = config.select(args.env)
        host = env.databricks_host.rstrip("/")
    elif len(served.workspaces) == 1:
        (host,) = served.workspaces
    if host is not None and host not in served.workspaces:
        raise ConfigError(f"{config.path}: the running sandbox serves no workspace {host} — restart `serve`")
    for line in exports(served, host):
        console.line(line)
    return 0


def _expire_records(store: SandboxStore, expired: set[str]) -> None:
    """As time would: the expiry each connection records for an expired token is now past too."""
    import datetime as dt

    from provisioner.operations.connection_token import TokenRecord

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for connection in store.connections():
        record = TokenRecord.of(connection)
        if record is not None and record.token_id in expired:
            store.set_connection_description(connection["id"], TokenRecord(record.token_id, now).description())
