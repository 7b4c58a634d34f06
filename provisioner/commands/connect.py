"""`provision connect`: the AEP base connection for a managed cluster — found if it exists,
repointed if it follows a re-created cluster, else created (provisioner.operations.connect);
with `--rotate-token`, its Databricks token replaced without a gap."""

from __future__ import annotations

import argparse
import json
from typing import Any

from provisioner.commands.options import environment_lock, run_context
from provisioner.console import Console
from provisioner.errors import ConfigError, ExitCode
from provisioner.operations.connect import Connected, Rotated, connect_cluster, rotate_tokens
from provisioner.operations.connection_token import TokenRecord


def run(args: argparse.Namespace, console: Console) -> int:
    if args.if_expiring_within is not None and not args.rotate_token:
        raise ConfigError("--if-expiring-within DAYS goes with --rotate-token — add it, or drop the option")
    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        with environment_lock(ctx, env, args, "connect"):
            if args.rotate_token:
                rotated = rotate_tokens(
                    ctx, env, args.cluster, console, timeout=args.timeout, if_expiring_within=args.if_expiring_within
                )
                _report_rotation(console, env.name, rotated, args.json)
                return ExitCode.ERROR if any(r.refused for r in rotated) else ExitCode.OK
            done = connect_cluster(
                ctx, env, args.cluster, console, timeout=args.timeout, database=args.database, catalog=args.catalog
            )
        doc: dict[str, Any] = {
            "environment": env.name,
            "cluster": done.cluster,
            "clusterId": done.cluster_id,
            "domain": env.databricks_host,
            "connectionId": done.connection_id,
            "created": done.created,
            "repointed": done.repointed,
            "token": _token_json(done.token),
        }
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            console.ok(f"{env.name}: base connection for {done.cluster} ({done.cluster_id}) {_verb(done)}")
            if done.token is not None and (done.created or done.repointed or done.token_replaced):
                console.info(f"{env.name}: its Databricks token {_describe(done.token)}")
            console.line(done.connection_id)
        return ExitCode.OK


def _verb(done: Connected) -> str:
    if done.created:
        return "created"
    return "repointed to it" if done.repointed else "already exists, reused"


def _describe(record: TokenRecord) -> str:
    when = "never" if record.expires is None else record.expires.strftime("%Y-%m-%d %H:%M UTC")
    return f"{record.token_id} expires {when}"


def _token_json(record: TokenRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    expires = None if record.expires is None else record.expires.isoformat().replace("+00:00", "Z")
    return {"tokenId": record.token_id, "expiryDate": expires}


def _report_rotation(console: Console, env: str, rotated: list[Rotated], as_json: bool) -> None:
    for r in rotated:
        if r.refused:  # on stderr with --json too: the reason the command fails
            console.error(r.refused)
    if as_json:
        doc = [
            {
                "cluster": r.cluster,
                "connectionId": r.connection_id or None,
                "rotated": r.new is not None,
                "oldToken": _token_json(r.old),
                "newToken": _token_json(r.new),
                "oldRevoked": r.old_revoked,
                "proof": r.proof or None,
                "skipped": r.skipped or None,
                "refused": r.refused or None,
            }
            for r in rotated
        ]
        console.result(json.dumps({"environment": env, "connections": doc}, indent=2, sort_keys=True))
        return
    for r in rotated:
        if r.refused:
            continue
        if r.new is None:
            console.info(f"{env}: {r.cluster}: token not rotated — {r.skipped}")
            continue
        old = "none recorded" if r.old is None else f"{r.old.token_id} {'revoked' if r.old_revoked else 'kept'}"
        console.ok(f"{env}: {r.cluster}: connection {r.connection_id} has token {_describe(r.new)} (previous: {old})")
        console.info(f"{env}: {r.cluster}: {r.proof}")
