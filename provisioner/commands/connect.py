"""`provision connect`: the AEP base connection for a managed cluster — found if it exists, else created.

The cluster must be running when AEP creates the connection, so a terminated one is
started and waited for (progress lines, `--timeout`). The Databricks PAT goes into the
connection's `accessToken`: the run's own PAT when it authenticates with one, otherwise a
PAT minted for the run's principal (OAuth M2M and Entra ID identities have no PAT to give).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from provisioner.commands.options import run_context
from provisioner.connections import connection_name, lookup
from provisioner.console import Console
from provisioner.databricks.converge import wait_running
from provisioner.databricks.identity import connection_token
from provisioner.errors import ConfigError, ProvisionError
from provisioner.workflow import RunContext, read_env_state

if TYPE_CHECKING:
    from provisioner.config import ClusterSpec, Environment
    from provisioner.secret import Secret


def run(args: argparse.Namespace, console: Console) -> int:
    from provisioner.aep.flowservice import ConnectionRequest, FlowServiceClient

    with run_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        spec = _cluster_spec(ctx, env, args.cluster)
        cluster_id = _cluster_id(ctx, env, spec)
        flow = FlowServiceClient(ctx.aep_client(env))
        found = lookup(flow, env, spec.name, cluster_id)
        repointed = False
        if found.current is not None:
            connection_id, created = str(found.current["id"]), False
        elif found.stale is not None:
            # Ours, but for a cluster id that is gone (re-created): repoint it, never a duplicate.
            _ensure_running(ctx, env, spec.name, cluster_id, console, args.timeout)
            flow.repoint(found.stale, cluster_id, _token(ctx, env, spec.name, console))
            connection_id, created, repointed = str(found.stale["id"]), False, True
        else:
            _ensure_running(ctx, env, spec.name, cluster_id, console, args.timeout)
            pat = _token(ctx, env, spec.name, console)
            request = ConnectionRequest(
                name=connection_name(env, spec.name),
                domain=env.databricks_host,
                cluster_id=cluster_id,
                access_token=pat,
                database=args.database,
                catalog=args.catalog,
            )
            connection_id, created = flow.create(request), True
        doc: dict[str, Any] = {
            "environment": env.name,
            "cluster": spec.name,
            "clusterId": cluster_id,
            "domain": env.databricks_host,
            "connectionId": connection_id,
            "created": created,
            "repointed": repointed,
        }
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            verb = "created" if created else "repointed to it" if repointed else "already exists, reused"
            console.ok(f"{env.name}: base connection for {spec.name} ({cluster_id}) {verb}")
            console.line(connection_id)
        return 0


def _token(ctx: RunContext, env: Environment, name: str, console: Console) -> Secret:
    pat, minted = connection_token(
        ctx.workspace_client(env), ctx.identity(env), f"dlz-provisioner: AEP base connection for {name}"
    )
    if minted:
        console.info(f"minted a personal access token of {ctx.identity(env).principal} for AEP's connection")
    return pat


def _cluster_spec(ctx: RunContext, env: Environment, name: str | None) -> ClusterSpec:
    if name is None:
        return env.clusters[0]
    for spec in env.clusters:
        if spec.name == name:
            return spec
    names = ", ".join(c.name for c in env.clusters)
    raise ConfigError(
        f"{ctx.config.path}: --cluster {name}: no such cluster in environment {env.name} — one of: {names}"
    )


def _cluster_id(ctx: RunContext, env: Environment, spec: ClusterSpec) -> str:
    ids = read_env_state(ctx, env).clusters()
    if spec.name not in ids:
        raise ProvisionError(f"{env.name}: cluster {spec.name} is not created yet — run `provision apply` first")
    return ids[spec.name]


def _ensure_running(
    ctx: RunContext, env: Environment, name: str, cluster_id: str, console: Console, timeout: float
) -> None:
    """AEP checks the cluster is RUNNING when the connection is created."""
    from provisioner.databricks.workspace import WorkspaceError

    client = ctx.workspace_client(env)
    try:
        state = client.get_cluster(cluster_id).get("state", "")
    except WorkspaceError as exc:
        raise ProvisionError(f"cannot read cluster {name} ({cluster_id}): {exc.message}") from None
    if state == "RUNNING":
        return
    if state in ("TERMINATED", "TERMINATING", "ERROR"):
        if state == "TERMINATING":
            client.wait_for_state(cluster_id, {"TERMINATED"}, timeout=timeout, poll=2.0)
        console.info(f"starting {name} ({cluster_id}): AEP needs it running to create the connection")
        client.start_cluster(cluster_id)
    wait_running(client, {name: cluster_id}, console, timeout, retry_hint="run `provision connect` again")
