"""The Databricks PAT inside AEP's base connection: a second credential with a lifecycle.

AEP reads a cluster through its base connection ("Access Token Authentication": `domain`,
`clusterId`, `accessToken`, `database`). That token is never the run's own credential: each
connection gets a PAT of its own, minted by `POST /api/2.0/token/create` with a bounded
lifetime (`connection.token_lifetime_days`, refused in one line above the workspace's
`maxTokenLifetimeDays`) and a comment naming the tool, the environment and the connection
(provisioner.databricks.tokens has the API's sources).

Where its facts live: the token's id and expiry are recorded in the connection's own
`description` in AEP — written in the same If-Match compare-and-set as the token itself
(provisioner.aep.flowservice `update_auth`), so the record can never name a token other than
the one AEP holds, and every run (CI or laptop) reads the same record. The token's value is
never stored anywhere but AEP. The workspace is the authority on whether the recorded token
is still valid (`token/list`: the caller's valid tokens).

Replacing a connection's token (`replace_token`: rotation, and repointing after a cluster
was re-created) never leaves AEP without a working token: mint the new one → PATCH the
connection with If-Match → prove it from AEP's side (explore) → only then delete the old
one. A kill at any step leaves at worst one unused token, bounded in lifetime and named by
its comment; `sweep` revokes such leftovers once they are older than any run's window
between mint and PATCH, so two runs at once never revoke each other's fresh token.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.aep.flowservice import FlowServiceClient, FlowServiceError
from provisioner.console import Console
from provisioner.databricks import tokens
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ConfigError, ProvisionError

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.tokens import MintedToken
    from provisioner.databricks.workspace import WorkspaceClient
    from provisioner.run.context import RunContext

Clock = Callable[[], dt.datetime]

TOOL = "dlz-provisioner"
# A leftover token (minted, but its run died before the PATCH) is revoked only once it is
# older than this: far longer than any run takes from mint to PATCH.
SWEEP_AFTER = dt.timedelta(hours=1)

_RECORD_RE = re.compile(r"Databricks token (?P<id>[0-9A-Za-z_-]+) expires (?P<expires>\S+?)\.?(?:\s|$)")

_RECORD_TIME = "%Y-%m-%dT%H:%M:%SZ"
OK, EXPIRING, EXPIRED, REVOKED, UNKNOWN = "ok", "expiring", "expired", "revoked", "unknown"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_comment(env: Environment, connection_name: str) -> str:
    """The token's comment in the workspace: which tool made it, for which environment and connection."""
    return f"{TOOL}: AEP base connection '{connection_name}' (environment {env.name})"


@dataclass(frozen=True)
class TokenRecord:
    """What the connection's description says about its token: id and expiry, never the value."""

    token_id: str
    expires: dt.datetime | None  # None: never

    def description(self) -> str:
        when = "never" if self.expires is None else self.expires.strftime(_RECORD_TIME)
        return f"Created by {TOOL}. Databricks token {self.token_id} expires {when}."

    @classmethod
    def of(cls, connection: Mapping[str, Any]) -> TokenRecord | None:
        match = _RECORD_RE.search(str(connection.get("description") or ""))
        if match is None:
            return None
        raw = match.group("expires")
        if raw == "never":
            return cls(match.group("id"), None)
        try:
            expires = dt.datetime.strptime(raw, _RECORD_TIME).replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        return cls(match.group("id"), expires)

    @classmethod
    def minted(cls, token: MintedToken) -> TokenRecord:
        expires = token.info.expires
        return cls(token.info.token_id, None if expires is None else expires.replace(microsecond=0))


# ---- minting ---------------------------------------------------------------------------


def mint(ctx: RunContext, env: Environment, connection_name: str) -> MintedToken:
    """A new PAT for one connection, bounded by `connection.token_lifetime_days`."""
    client = ctx.workspace_client(env)
    days = env.connection.token_lifetime_days
    cap = tokens.max_lifetime_days(client)
    if cap is not None and days > cap:
        raise _lifetime_error(ctx, env, f"the workspace allows at most {cap} days (maxTokenLifetimeDays)", cap)
    try:
        return tokens.create(client, token_comment(env, connection_name), days)
    except WorkspaceError as exc:
        if exc.status == 400 and "lifetime" in exc.message.lower():
            raise _lifetime_error(ctx, env, f"the workspace refused it ({exc.message})", None) from None
        raise ProvisionError(f"{env.name}: cannot mint a token for AEP's connection: {exc.message}") from None


def _lifetime_error(ctx: RunContext, env: Environment, why: str, cap: int | None) -> ConfigError:
    days = env.connection.token_lifetime_days
    fix = f"set it to {cap} or less" if cap else "lower it to the workspace's maximum token lifetime"
    return ConfigError(f"{ctx.config.path}: connection.token_lifetime_days: {days} days is too long — {why}; {fix}")


def discard(client: WorkspaceClient, token: MintedToken, console: Console, env: Environment) -> None:
    """Revoke a token that never went live (its PATCH or POST failed); say so if even that fails."""
    try:
        tokens.delete(client, token.info.token_id)
    except WorkspaceError as exc:
        console.warn(
            f"{env.name}: could not revoke unused token {token.info.token_id} ({exc.message}) — it expires "
            f"{_when(token.info.expires)}, or run `provision connect` again later to revoke it"
        )


# ---- replacing a connection's token without a gap ----------------------------------------


@dataclass(frozen=True)
class Replaced:
    connection_id: str
    new: TokenRecord
    old: TokenRecord | None  # None: the connection had no recorded token (made before this tool managed it)
    old_revoked: bool
    proof: str  # how the new token was shown to work


def replace_token(
    ctx: RunContext,
    env: Environment,
    flow: FlowServiceClient,
    connection: dict[str, Any],
    console: Console,
    *,
    cluster_id: str | None = None,
) -> Replaced:
    """mint → PATCH (If-Match) → prove from AEP's side → revoke the old token → sweep leftovers.

    If the PATCH fails, the new token is revoked and AEP still holds the old one. If the proof
    fails, the old token is kept (AEP no longer holds it, but what went wrong is for a person
    to look at) and the failure is raised."""
    client = ctx.workspace_client(env)
    name = str(connection.get("name") or "")
    old = TokenRecord.of(connection)
    minted = mint(ctx, env, name)
    new = TokenRecord.minted(minted)
    try:
        flow.update_auth(connection, minted.value, new.description(), cluster_id=cluster_id)
    except BaseException:
        discard(client, minted, console, env)
        raise
    connection_id = str(connection["id"])
    target_cluster = cluster_id or str(((connection.get("auth") or {}).get("params") or {}).get("clusterId") or "")
    outcome, proof = prove(ctx, env, flow, connection_id, target_cluster)
    if outcome == FAILED:
        raise ProvisionError(
            f"{env.name}: AEP base connection {connection_id} now holds token {new.token_id}, but AEP cannot "
            f"read the cluster with it ({proof}); the previous token"
            f"{'' if old is None else ' ' + old.token_id} was kept — see `provision status`"
        )
    old_revoked = False
    if old is not None and old.token_id != new.token_id:
        try:
            old_revoked = tokens.delete(client, old.token_id)
        except WorkspaceError as exc:
            console.warn(
                f"{env.name}: could not revoke the previous token {old.token_id} of connection {connection_id} "
                f"({exc.message}) — revoke it in the workspace (Settings → Developer → Access tokens)"
            )
    sweep(client, env, name, keep={new.token_id}, console=console)
    return Replaced(connection_id, new, old, old_revoked, proof)


PROVEN, FAILED, UNPROVEN = "proven", "failed", "unproven"


def prove(
    ctx: RunContext, env: Environment, flow: FlowServiceClient, connection_id: str, cluster_id: str
) -> tuple[str, str]:
    """Does the connection work from AEP's side? (PROVEN | FAILED | UNPROVEN, how — or why not,
    or what could not be proven).

    Flow Service can explore a connection (list the source's tables with the stored
    credentials). It is only asked for a running cluster: exploring a terminated one would
    start it. Otherwise the answer is UNPROVEN and says why."""
    try:
        state = str(ctx.workspace_client(env).get_cluster(cluster_id).get("state", "")) if cluster_id else ""
    except WorkspaceError as exc:
        return UNPROVEN, f"not proven from AEP's side: cannot read cluster {cluster_id} ({exc.message})"
    if state != "RUNNING":
        return UNPROVEN, (
            f"not proven from AEP's side: cluster {cluster_id} is {state or 'unknown'} and exploring the "
            "connection would start it"
        )
    try:
        refused = flow.explore(connection_id)
    except FlowServiceError as exc:
        return UNPROVEN, f"not proven from AEP's side: {exc}"
    if refused is not None:
        return FAILED, refused
    return PROVEN, "AEP explored the connection with it"


@dataclass(frozen=True)
class ConnectionCheck:
    """`provision verify`: one managed cluster's AEP base connection, as AEP sees it."""

    cluster: str
    connection_id: str
    outcome: str  # proven | failed | unproven
    detail: str

    def as_json(self) -> dict[str, Any]:
        works = {PROVEN: True, FAILED: False}.get(self.outcome)
        return {"cluster": self.cluster, "connectionId": self.connection_id, "works": works, "detail": self.detail}


def check_connections(ctx: RunContext, env: Environment, clusters: Mapping[str, str]) -> list[ConnectionCheck]:
    """Explore the connection of each managed cluster (name → id) that has one."""
    from provisioner.aep.flowservice import norm_domain

    flow = FlowServiceClient(ctx.aep_client(env))
    want = norm_domain(env.databricks_host)
    by_id = {cid: name for name, cid in clusters.items()}
    seen: set[str] = set()
    out = []
    for item in flow.connections():
        params = (item.get("auth") or {}).get("params") or {}
        name = by_id.get(str(params.get("clusterId", "")))
        if name is None or name in seen or norm_domain(str(params.get("domain", ""))) != want:
            continue
        seen.add(name)
        outcome, detail = prove(ctx, env, flow, str(item["id"]), clusters[name])
        out.append(ConnectionCheck(name, str(item["id"]), outcome, detail))
    return sorted(out, key=lambda c: c.cluster)


def sweep(client: WorkspaceClient, env: Environment, connection_name: str, keep: set[str], console: Console) -> None:
    """Revoke leftover tokens of this connection (a run killed between mint and PATCH, or after
    the PATCH but before revoking the old one): same comment, not the recorded token, and older
    than SWEEP_AFTER, so another run's token on its way to AEP is never touched."""
    comment = token_comment(env, connection_name)
    cutoff = utc_now() - SWEEP_AFTER
    try:
        listed = tokens.list_own(client)
    except WorkspaceError:
        return  # a leftover is bounded in lifetime; the next run sweeps again
    for info in listed:
        if info.comment != comment or info.token_id in keep or info.created is None or info.created > cutoff:
            continue
        try:
            if tokens.delete(client, info.token_id):
                console.info(f"{env.name}: revoked leftover token {info.token_id} of '{connection_name}'")
        except WorkspaceError:
            continue


# ---- what status and destroy see ---------------------------------------------------------


@dataclass(frozen=True)
class TokenState:
    """One connection's token as `status` reports it."""

    cluster: str
    connection_id: str
    token_id: str | None
    expires: dt.datetime | None
    days_left: int | None
    state: str  # ok | expiring | expired | revoked | unknown
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "connectionId": self.connection_id,
            "tokenId": self.token_id,
            "expiryDate": None if self.expires is None else self.expires.isoformat().replace("+00:00", "Z"),
            "daysLeft": self.days_left,
            "state": self.state,
            "detail": self.detail,
        }


def token_states(
    client: WorkspaceClient,
    env: Environment,
    connections: Mapping[str, dict[str, Any]],
    now: Clock = utc_now,
) -> list[TokenState]:
    """The token of each connection (cluster name → connection), judged against the workspace."""
    if not connections:
        return []
    try:
        valid: dict[str, tokens.TokenInfo] | None = {t.token_id: t for t in tokens.list_own(client)}
    except WorkspaceError:
        valid = None
    at = now()
    out = []
    for cluster, connection in sorted(connections.items()):
        out.append(_judge(cluster, connection, valid, env.connection.warn_days, at))
    return out


def _judge(
    cluster: str,
    connection: Mapping[str, Any],
    valid: Mapping[str, tokens.TokenInfo] | None,
    warn_days: int,
    at: dt.datetime,
) -> TokenState:
    cid = str(connection.get("id"))
    record = TokenRecord.of(connection)
    if record is None:
        return TokenState(
            cluster,
            cid,
            None,
            None,
            None,
            UNKNOWN,
            "no token recorded on the connection (made before the tool managed its token) — "
            "run `provision connect --rotate-token` to give it a dedicated, bounded one",
        )
    listed = None if valid is None else valid.get(record.token_id)
    expires = listed.expires if listed is not None else record.expires
    days = None if expires is None else int((expires - at).total_seconds() // 86_400)

    def state(kind: str, advice: str) -> TokenState:
        return TokenState(cluster, cid, record.token_id, expires, days, kind, advice)

    if expires is not None and expires <= at:
        return state(
            EXPIRED, f"expired {_when(expires)}: AEP cannot read the cluster — run `provision connect --rotate-token`"
        )
    if valid is None:
        return state(UNKNOWN, "the workspace's token list could not be read, so the token's validity is unknown")
    if listed is None:
        return state(
            REVOKED,
            "revoked, or not this identity's token (the workspace does not list it) — "
            "run `provision connect --rotate-token` as the connection token's owner",
        )
    if days is not None and days <= warn_days:
        return state(EXPIRING, f"expires within {warn_days} days — run `provision connect --rotate-token`")
    return state(OK, "")


def _when(expires: dt.datetime | None) -> str:
    return "never" if expires is None else expires.strftime("%Y-%m-%d %H:%M UTC")
