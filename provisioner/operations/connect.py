"""AEP base connections of managed clusters: find, create, and repoint when a cluster id changes.

A base connection names one cluster by id (`auth.params.clusterId`). When Terraform
re-creates a managed cluster — it was deleted, or Databricks purged it 30 days after its
termination — the id changes and AEP's dataflows would run against a cluster that no longer
exists. So after an apply, and in `provision connect`, a connection that still points at a
managed cluster's old id (or, by our naming, belongs to it) is repointed with
`PATCH /connections/{id}` + `If-Match` (provisioner.aep.flowservice.repoint) instead of a new
one being created; if that is impossible the exact connection is named as orphaned.

`provision connect` (`connect_cluster`): the cluster must be running when AEP creates the
connection, so a terminated one is started and waited for. The connection's `accessToken` is
a PAT of its own, never the run's credential, with a bounded lifetime; its id and expiry are
recorded on the connection (provisioner.operations.connection_token). A connection without
that record (made before the tool managed its token) gets a dedicated token on the next
`connect`. `provision connect --rotate-token` (`rotate_tokens`) replaces the tokens without a gap.
Every caller holds the environment's lock (commands/connect.py, and apply for its repoints), so
two runs never mint, PATCH and revoke one connection's tokens at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.aep.flowservice import ConnectionRequest, FlowServiceClient, FlowServiceError, norm_domain
from provisioner.console import Console
from provisioner.databricks.access_mode import NOT_FOR_RUN, judge
from provisioner.databricks.converge import wait_running
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ConfigError, ProvisionError
from provisioner.operations import connection_token
from provisioner.operations.connection_token import TokenRecord, replace_token
from provisioner.run.context import read_env_state

if TYPE_CHECKING:
    from provisioner.config.model import ClusterSpec, Environment
    from provisioner.run.context import RunContext


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


class ForeignCluster(ProvisionError):
    """The cluster is dedicated to someone other than the run's principal: a token this run
    mints could not use it (provisioner.databricks.access_mode)."""


def _refuse_foreign(ctx: RunContext, env: Environment, name: str, info: Mapping[str, Any], *, command: str) -> None:
    """Before a token is minted for a connection to the cluster `info` describes: ForeignCluster
    when it is dedicated to someone else — the token would be this run's, and such a cluster runs
    none of its commands, so AEP could not use it."""
    identity = ctx.identity(env)
    found = judge(info.get("data_security_mode"), info.get("single_user_name"), identity)
    if found is not None and found.kind == NOT_FOR_RUN:
        raise ForeignCluster(
            f"{env.name}: clusters.{name}: {found.reason} — have {info.get('single_user_name')} run "
            f"`{command} --cluster {name}`, or set single_user_name: {identity.user_name}; nothing was created"
        )


def repoint_changed(
    ctx: RunContext,
    env: Environment,
    flow: FlowServiceClient,
    before: Mapping[str, str],
    after: Mapping[str, str],
    console: Console,
) -> list[str]:
    """After an apply: repoint the connection of every cluster whose id changed (with a new
    token: AEP never returns the stored one, and the PATCH replaces the params whole); the
    orphans' lines."""
    orphaned: list[str] = []
    for name, new_id in sorted(after.items()):
        old_id = before.get(name)
        if old_id is None or old_id == new_id:
            continue
        found = lookup(flow, env, name, new_id, frozenset({old_id}))
        if found.stale is None:
            continue  # no connection for this cluster (or one already points at the new id)
        connection_id = str(found.stale.get("id"))
        try:
            _refuse_foreign(ctx, env, name, ctx.workspace_client(env).get_cluster(new_id), command="provision connect")
            replace_token(ctx, env, flow, found.stale, console, cluster_id=new_id)
        except ForeignCluster as exc:
            # The re-created cluster is someone else's: its assigned user repoints the connection.
            orphaned.append(f"AEP base connection {connection_id} still points at {name}'s old cluster {old_id}: {exc}")
            continue
        except (FlowServiceError, ProvisionError, WorkspaceError) as exc:
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
    flow = FlowServiceClient(ctx.aep_client(env))
    for line in repoint_changed(ctx, env, flow, before, after, console):
        console.warn(f"{env.name}: {line}")


# ---- provision connect -------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    cluster: str
    cluster_id: str
    connection_id: str
    created: bool  # a new connection
    repointed: bool  # ours, moved from a re-created cluster's old id
    token: TokenRecord | None = None  # the connection's token (None: unrecorded)
    token_replaced: bool = False  # it had no recorded token and got a dedicated one


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

    spec = _cluster_spec(ctx, env, cluster)
    ids = read_env_state(ctx, env).clusters()
    if spec.name not in ids:
        raise ProvisionError(f"{env.name}: cluster {spec.name} is not created yet — run `provision apply` first")
    cluster_id = ids[spec.name]
    flow = FlowServiceClient(ctx.aep_client(env))
    found = lookup(flow, env, spec.name, cluster_id)
    if found.current is not None:
        record = TokenRecord.of(found.current)
        if record is not None:
            return Connected(spec.name, cluster_id, str(found.current["id"]), False, False, record)
        # Made before the tool managed its token (perhaps with someone's own PAT): give it a
        # dedicated one. The token it held is unknown here, so it is named, never revoked.
        _ready_for_token(ctx, env, spec.name, cluster_id, console, timeout, command="provision connect")
        done = replace_token(ctx, env, flow, found.current, console)
        console.warn(
            f"{env.name}: AEP base connection {done.connection_id} had a token the tool did not mint; it now "
            f"has its own ({done.new.token_id}) — if the old one was a personal or CI token, revoke it yourself"
        )
        return Connected(spec.name, cluster_id, done.connection_id, False, False, done.new, token_replaced=True)
    _ready_for_token(ctx, env, spec.name, cluster_id, console, timeout, command="provision connect")
    if found.stale is not None:
        # Ours, but for a cluster id that is gone (re-created): repoint it, never a duplicate.
        done = replace_token(ctx, env, flow, found.stale, console, cluster_id=cluster_id)
        return Connected(spec.name, cluster_id, done.connection_id, False, True, done.new)
    name = connection_name(env, spec.name)
    minted = connection_token.mint(ctx, env, name)
    record = TokenRecord.minted(minted)
    request = ConnectionRequest(
        name=name,
        domain=env.databricks_host,
        cluster_id=cluster_id,
        access_token=minted.value,
        database=database,
        catalog=catalog,
        description=record.description(),
    )
    try:
        connection_id = flow.create(request)
    except BaseException:
        connection_token.discard(ctx.workspace_client(env), minted, console, env)
        raise
    return Connected(spec.name, cluster_id, connection_id, True, False, record)


def _ready_for_token(
    ctx: RunContext, env: Environment, name: str, cluster_id: str, console: Console, timeout: float, *, command: str
) -> None:
    """Before a token is minted for the cluster's connection (`connect`, `connect --rotate-token`),
    the cluster read once: refused if dedicated to someone else (`_refuse_foreign`), started if it
    is not running (AEP checks it is RUNNING when the connection is created or explored)."""
    client = ctx.workspace_client(env)
    try:
        info = client.get_cluster(cluster_id)
    except WorkspaceError as exc:
        raise ProvisionError(f"cannot read cluster {name} ({cluster_id}): {exc.message}") from None
    _refuse_foreign(ctx, env, name, info, command=command)
    _ensure_running(ctx, env, name, cluster_id, str(info.get("state", "")), console, timeout)


# ---- provision connect --rotate-token ----------------------------------------------------


@dataclass(frozen=True)
class Rotated:
    cluster: str
    connection_id: str
    old: TokenRecord | None
    new: TokenRecord | None  # None: not rotated (see `skipped`)
    old_revoked: bool = False
    proof: str = ""
    skipped: str = ""
    refused: str = ""  # not rotated, and the command fails: the line saying why


def rotate_tokens(
    ctx: RunContext,
    env: Environment,
    cluster: str | None,
    console: Console,
    *,
    timeout: float,
    if_expiring_within: int | None = None,
) -> list[Rotated]:
    """Replace the token of each managed cluster's connection (or one cluster's) without a gap."""

    specs = [_cluster_spec(ctx, env, cluster)] if cluster else list(env.clusters)
    ids = read_env_state(ctx, env).clusters()
    flow = FlowServiceClient(ctx.aep_client(env))
    client = ctx.workspace_client(env)
    done: list[Rotated] = []
    for spec in specs:
        cluster_id = ids.get(spec.name)
        current = lookup(flow, env, spec.name, cluster_id).current if cluster_id else None
        if cluster_id is None or current is None:
            done.append(Rotated(spec.name, "", None, None, skipped="no AEP base connection (`provision connect`)"))
            continue
        (state,) = connection_token.token_states(client, env, {spec.name: current})
        old = TokenRecord.of(current)
        if if_expiring_within is not None and not _due(state, if_expiring_within):
            left = "it never expires" if state.days_left is None else f"{state.days_left} days left"
            why = f"not expiring within {if_expiring_within} days ({left})"
            done.append(Rotated(spec.name, str(current["id"]), old, None, skipped=why))
            continue
        try:
            _ready_for_token(
                ctx, env, spec.name, cluster_id, console, timeout, command="provision connect --rotate-token"
            )
        except ForeignCluster as exc:
            # The connection may hold its assigned user's working token: a token of this run's
            # would replace it with one AEP cannot use. The other clusters' rotations go on.
            done.append(Rotated(spec.name, str(current["id"]), old, None, refused=str(exc)))
            continue
        replaced = replace_token(ctx, env, flow, current, console)
        done.append(Rotated(spec.name, replaced.connection_id, old, replaced.new, replaced.old_revoked, replaced.proof))
    return done


def _due(state: connection_token.TokenState, within: int) -> bool:
    """Rotate now? An expired, revoked or unknown token always; a valid one inside the window."""
    if state.state not in (connection_token.OK, connection_token.EXPIRING):
        return True
    return state.days_left is not None and state.days_left <= within


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
    ctx: RunContext, env: Environment, name: str, cluster_id: str, state: str, console: Console, timeout: float
) -> None:
    """AEP checks the cluster is RUNNING when the connection is created; `state` as just read."""

    client = ctx.workspace_client(env)
    if state == "RUNNING":
        return
    if state in ("TERMINATED", "TERMINATING", "ERROR"):
        if state == "TERMINATING":
            client.wait_for_state(cluster_id, {"TERMINATED"}, timeout=timeout, poll=2.0)
        console.info(f"starting {name} ({cluster_id}): AEP needs it running to create the connection")
        client.start_cluster(cluster_id)
    hint = "run `provision connect` again"
    wait_running(client, {name: cluster_id}, console, timeout, retry_hint=hint, clock=ctx.clock)
