"""AEP base connections of managed clusters: find, create, and repoint when a cluster id changes.

A base connection names one cluster by id (`auth.params.clusterId`). When Terraform
re-creates a managed cluster — it was deleted, or Databricks purged it 30 days after its
termination — the id changes and AEP's dataflows would run against a cluster that no longer
exists. So after an apply, and in `provision connect`, a connection that still points at a
managed cluster's old id (or, by our naming, belongs to it) is repointed with
`PATCH /connections/{id}` + `If-Match` (provisioner.aep.flowservice.repoint) instead of a new
one being created; if that is impossible the exact connection is named as orphaned.

`provision connect` (`connect_cluster`): the cluster must be running when AEP creates the
connection, so a terminated one is started and waited for. The Databricks PAT goes into the
connection's `accessToken`: the run's own PAT when it authenticates with one, otherwise a PAT
minted for the run's principal (OAuth M2M and Entra ID identities have no PAT to give).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.aep.flowservice import ConnectionRequest, FlowServiceClient, FlowServiceError, norm_domain
from provisioner.console import Console
from provisioner.errors import ConfigError, ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import ClusterSpec, Environment
    from provisioner.run.context import RunContext
    from provisioner.secret import Secret


def connection_name(env: Environment, cluster: str) -> str:
    return f"Databricks {env.name} {cluster}"


@dataclass(frozen=True)
class Lookup:
    current: dict[str, Any] | None  # already points at the cluster's id
    stale: dict[str, Any] | None  # belongs to the cluster but points at an old id


def lookup(
    flow: FlowServiceClient, env: Environment, cluster: str, cluster_id: str, old_ids: frozenset[str] = frozenset()
) -> Lookup:
    """The connection for `cluster`, by id first, then by an old id or our name for it."""
    want = norm_domain(env.databricks_host)
    stale: dict[str, Any] | None = None
    for item in flow.connections():
        params = (item.get("auth") or {}).get("params") or {}
        if norm_domain(str(params.get("domain", ""))) != want:
            continue
        if params.get("clusterId") == cluster_id:
            return Lookup(item, None)
        if stale is None and (params.get("clusterId") in old_ids or item.get("name") == connection_name(env, cluster)):
            stale = item
    return Lookup(None, stale)


def repoint_changed(
    flow: FlowServiceClient,
    env: Environment,
    before: Mapping[str, str],
    after: Mapping[str, str],
    token: Secret | None,
    console: Console,
) -> list[str]:
    """After an apply: repoint the connection of every cluster whose id changed; the orphans' lines."""
    orphaned: list[str] = []
    for name, new_id in sorted(after.items()):
        old_id = before.get(name)
        if old_id is None or old_id == new_id:
            continue
        found = lookup(flow, env, name, new_id, frozenset({old_id}))
        if found.stale is None:
            continue  # no connection for this cluster (or one already points at the new id)
        connection_id = str(found.stale.get("id"))
        if token is None:
            orphaned.append(
                f"AEP base connection {connection_id} still points at {name}'s old cluster {old_id} (no token for "
                f"it) — run `provision connect --cluster {name}` to repoint it to {new_id}"
            )
            continue
        try:
            flow.repoint(found.stale, new_id, token)
        except (FlowServiceError, ProvisionError) as exc:
            orphaned.append(
                f"AEP base connection {connection_id} still points at {name}'s old cluster {old_id} ({exc}) — "
                f"run `provision connect --cluster {name}` to repoint it to {new_id}"
            )
            continue
        console.ok(f"{env.name}: AEP base connection {connection_id} now points at {name} ({old_id} → {new_id})")
    return orphaned


def repoint_after_apply(
    ctx: RunContext, env: Environment, before: Mapping[str, str], after: Mapping[str, str], console: Console
) -> None:
    """Repoint the AEP connections of clusters the apply re-created; warn, naming each orphan."""
    if all(before.get(name) in (None, cid) for name, cid in after.items()):
        return  # no managed cluster changed its id: AEP is not asked anything
    from provisioner.databricks.identity import connection_token

    flow = FlowServiceClient(ctx.aep_client(env))
    token: Secret | None
    try:
        # AEP never returns the stored token: the PATCH carries one again (the run's PAT, or a new one).
        token, _ = connection_token(
            ctx.workspace_client(env), ctx.identity(env), f"dlz-provisioner: AEP base connection ({env.name})"
        )
    except ProvisionError:
        token = None  # every changed connection is then named as orphaned, with the fix
    for line in repoint_changed(flow, env, before, after, token, console):
        console.warn(f"{env.name}: {line}")


# ---- provision connect -------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    cluster: str
    cluster_id: str
    connection_id: str
    created: bool  # a new connection
    repointed: bool  # ours, moved from a re-created cluster's old id


def connect_cluster(
    ctx: RunContext,
    env: Environment,
    cluster: str | None,
    console: Console,
    *,
    timeout: float,
    database: str = "default",
    catalog: str | None = None,
) -> Connected:
    """The base connection for a managed cluster (None: the first): found, repointed or created."""
    from provisioner.run.context import read_env_state

    spec = _cluster_spec(ctx, env, cluster)
    ids = read_env_state(ctx, env).clusters()
    if spec.name not in ids:
        raise ProvisionError(f"{env.name}: cluster {spec.name} is not created yet — run `provision apply` first")
    cluster_id = ids[spec.name]
    flow = FlowServiceClient(ctx.aep_client(env))
    found = lookup(flow, env, spec.name, cluster_id)
    if found.current is not None:
        return Connected(spec.name, cluster_id, str(found.current["id"]), created=False, repointed=False)
    _ensure_running(ctx, env, spec.name, cluster_id, console, timeout)
    if found.stale is not None:
        # Ours, but for a cluster id that is gone (re-created): repoint it, never a duplicate.
        flow.repoint(found.stale, cluster_id, _token(ctx, env, spec.name, console))
        return Connected(spec.name, cluster_id, str(found.stale["id"]), created=False, repointed=True)
    request = ConnectionRequest(
        name=connection_name(env, spec.name),
        domain=env.databricks_host,
        cluster_id=cluster_id,
        access_token=_token(ctx, env, spec.name, console),
        database=database,
        catalog=catalog,
    )
    return Connected(spec.name, cluster_id, flow.create(request), created=True, repointed=False)


def _token(ctx: RunContext, env: Environment, name: str, console: Console) -> Secret:
    from provisioner.databricks.identity import connection_token

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


def _ensure_running(
    ctx: RunContext, env: Environment, name: str, cluster_id: str, console: Console, timeout: float
) -> None:
    """AEP checks the cluster is RUNNING when the connection is created."""
    from provisioner.databricks.converge import wait_running
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
