"""Does every managed cluster really use AEP's current token? (what `provision status` reports)

Sources, all read-only: AEP's current credentials, the Terraform state document (which
cluster ids we manage; inline mode: the token the clusters carry — see `provisioner.sas.expiry`),
the workspace API (each cluster's live state and spark_conf; the secret's
`last_updated_timestamp` and the fingerprint the tool writes beside it,
`provisioner.sas.secret_value`), and optionally a DLZ oracle (the sandbox's: can this running
cluster reach the landing zone?).

Drift: AEP issued a token the workspace does not hold (rotation needed); the SAS entry is
missing or not what the config renders; a key set in provision.yaml is missing or
different (keys the workspace adds itself, and the keys the real provider diff-suppresses,
never count); the secret is missing or was rewritten outside the tool; a RUNNING cluster
started before the secret's current value was written; a configured cluster is missing or
was deleted outside Terraform; a cluster carrying the environment's tags that the state does
not know (a killed apply's create, provisioner.databricks.cluster_tags); an unfinished
rotation; (oracle) a running cluster cannot reach the DLZ. Otherwise EXPIRING when the token
expires within `sas.warn_days`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.databricks.cluster_reads import read_clusters
from provisioner.databricks.cluster_state import cluster_gone, last_start_ms
from provisioner.databricks.cluster_tags import Stray, find_strays, importable
from provisioner.databricks.pinning import purge_warning
from provisioner.databricks.spark_conf import DIFF_SUPPRESSED_SPARK_CONF
from provisioner.databricks.workspace import WorkspaceError, said
from provisioner.errors import ExitCode, ProvisionError
from provisioner.operations.recover import unplaced
from provisioner.sas.expiry import TokenReplaced
from provisioner.sas.modes import mode_of
from provisioner.sas.secret_value import judge_freshness
from provisioner.secret import mask

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config.model import ClusterSpec, Environment
    from provisioner.databricks.workspace import WorkspaceClient
    from provisioner.terraform import TerraformState

STATUS_WORD = {ExitCode.HEALTHY: "healthy", ExitCode.EXPIRING: "expiring", ExitCode.DRIFT: "drift"}
Oracle = Callable[[str], bool]  # cluster id -> can it reach the DLZ right now?
DLZ_ORACLE_PROBLEM = "cannot reach the DLZ with its running Spark config"
SECRET_HOLDS_REVOKED = (
    "the secret holds a token AEP no longer honours (expired or refreshed outside the tool) — run `provision rotate`"
)


@dataclass
class SecretStatus:
    scope: str
    key: str
    present: bool
    last_updated: str | None  # ISO 8601 UTC
    holds_current_token: bool | None  # from the Terraform state; None when unknown
    problems: list[str] = field(default_factory=list)
    updated_ms: int | None = None  # exact, for comparing with cluster start times


@dataclass
class ClusterStatus:
    name: str
    cluster_id: str | None
    state: str  # Databricks state, or NOT_CREATED / DELETED
    sas_entry: str  # current | revoked | missing | different | stale | unknown
    dlz_access: bool | None  # oracle; None without one or when not running
    last_started: str | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # not drift yet: e.g. the 30-day purge ahead

    @property
    def drift(self) -> bool:
        return bool(self.problems)


@dataclass
class StatusReport:
    env: Environment
    creds: DlzCredentials
    secret: SecretStatus | None
    clusters: list[ClusterStatus]
    replaced: TokenReplaced | None
    unfinished_rotation: str | None

    @property
    def exit_code(self) -> ExitCode:
        """Drift beats expiry: a cluster that cannot write today matters more than one that will not next week."""
        drift = (
            self.replaced is not None
            or self.unfinished_rotation is not None
            or (self.secret is not None and bool(self.secret.problems))
            or any(c.drift for c in self.clusters)
        )
        if drift:
            return ExitCode.DRIFT
        if self.creds.days_left() <= self.env.sas.warn_days or any(c.warnings for c in self.clusters):
            return ExitCode.EXPIRING
        return ExitCode.HEALTHY


@dataclass(frozen=True)
class WorkspaceReading:
    """What `status` reads from the workspace; none of it needs AEP's token, so it is read
    while AEP answers (`status_report`) and compared with the token afterwards."""

    clusters: Mapping[str, dict[str, Any] | WorkspaceError]  # cluster id -> `clusters/get` view
    pinned: frozenset[str]
    secrets: Mapping[str, int] | None  # secret_scope mode: the scope's keys -> written (ms)
    read_at_ms: int  # when, on the run's clock (the client's): the purge warning counts days from it
    strays: tuple[Stray, ...] = ()  # tagged for this environment, unknown to its state


def read_workspace(client: WorkspaceClient, env: Environment, ids: Mapping[str, str]) -> WorkspaceReading:
    """Every read at once, bounded by `databricks.max_parallel`: the clusters as
    `cluster_reads.read_clusters` reads them (pinned ones from one list call), the secret
    scope's listing beside them."""
    # A stray can only take the place of a cluster the state lacks: the whole cluster list
    # (pages of 100) is read only then; `apply` and `destroy` always look.
    missing = any(c.import_id is None and c.name not in ids for c in env.clusters)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="status-side") as side:
        secrets = side.submit(mode_of(env).list_secrets, client, env)
        listed = side.submit(client.list_clusters) if missing else None
        reads = read_clusters(client, env, ids, beside=1 + bool(missing))
        strays = () if listed is None else tuple(find_strays(listed.result(), env.name, ids.values()))
        read_at_ms = int(client.clock.time() * 1000)
        return WorkspaceReading(reads.clusters, reads.pinned, secrets.result(), read_at_ms, strays)


def status_report(
    env: Environment,
    state: TerraformState,
    client: WorkspaceClient,
    fetch_credentials: Callable[[], DlzCredentials],
    *,
    oracle: Oracle | None = None,
    unfinished_rotation: str | None = None,
) -> StatusReport:
    """Read the workspace while AEP answers `fetch_credentials` (on this thread), then compare."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="status-read") as side:
        reading = side.submit(read_workspace, client, env, state.clusters())
        creds = fetch_credentials()
        return gather_status(
            env, creds, state, reading.result(), oracle=oracle, unfinished_rotation=unfinished_rotation
        )


def gather_status(
    env: Environment,
    creds: DlzCredentials,
    state: TerraformState,
    reading: WorkspaceReading,
    *,
    oracle: Oracle | None = None,
    unfinished_rotation: str | None = None,
) -> StatusReport:
    ids = state.clusters()
    secret = None if reading.secrets is None else _secret_status(reading.secrets, env, creds)
    written = None if secret is None else secret.updated_ms
    clusters = [
        _cluster_status(env, spec, ids.get(spec.name), reading, creds, written, oracle) for spec in env.clusters
    ]
    clusters = _with_strays(env, clusters, reading.strays, ids)
    unreadable = [
        f"cluster {c.name} ({c.cluster_id}): {said(error)}"
        for c in clusters
        if isinstance(error := reading.clusters.get(c.cluster_id or ""), WorkspaceError) and c.state != "DELETED"
    ]
    if unreadable:  # every one named, not only the first
        raise ProvisionError(
            mask(f"status failed for {len(unreadable)} of {len(clusters)}: cannot read " + "; ".join(unreadable))
        )
    replaced = mode_of(env).token_replaced(state, env, creds, reading.secrets)
    if secret is not None and replaced is not None and secret.holds_current_token is None:
        secret.holds_current_token = False  # the older layout: the state says which token the value is
    if replaced is not None:
        for c in clusters:
            _mark_revoked(env, c, creds, replaced)
    if unfinished_rotation is not None:
        _one_way_out(secret, clusters)
    return StatusReport(env, creds, secret, clusters, replaced, unfinished_rotation)


def _mark_revoked(env: Environment, c: ClusterStatus, creds: DlzCredentials, replaced: TokenReplaced) -> None:
    """A cluster that reads the token AEP revoked says so once, in plain words, with the one
    command that fixes it — not `current` beside a DLZ `NO`, nor a separate "cannot reach"."""
    holder = mode_of(env).secret_holder(env)
    reads_old = (c.sas_entry == "current" and holder in replaced.holders) or (
        c.sas_entry == "different" and f"cluster {c.name}" in replaced.holders
    )
    if not reads_old:
        return
    c.sas_entry = "revoked"
    own = [p for p in c.problems if p != DLZ_ORACLE_PROBLEM and not p.startswith(f"spark_conf {creds.spark_conf_key} ")]
    via = f"through {holder}" if holder is not None else "in its spark_conf"
    cannot = "cannot reach the DLZ: " if c.dlz_access is False else ""
    c.problems = [
        f"{cannot}it reads the SAS token {via}, which AEP revoked when it issued a new one on "
        f"{replaced.issued_on.isoformat()} — run `provision rotate`",
        *own,
    ]


def _with_strays(
    env: Environment, clusters: list[ClusterStatus], strays: tuple[Stray, ...], ids: Mapping[str, str]
) -> list[ClusterStatus]:
    """A configured cluster the state lacks is shown as the stray `apply` will import; any other
    stray gets a row of its own, so every one is named."""

    chosen = importable(strays, (c.name for c in env.clusters if c.import_id is None), ids)
    out = []
    for c in clusters:
        stray = chosen.get(c.name)
        if stray is not None and c.cluster_id is None:
            c = ClusterStatus(
                c.name,
                stray.cluster_id,
                stray.state,
                "unknown",
                None,
                None,
                [
                    f"{stray.describe()} was created by an interrupted apply and is not in Terraform's state — "
                    "run `provision apply` (it imports it instead of creating a duplicate)"
                ],
            )
        out.append(c)
    placed = {s.cluster_id for s in chosen.values()}
    for stray in strays:
        if stray.cluster_id not in placed:
            out.append(
                ClusterStatus(stray.name, stray.cluster_id, stray.state, "unknown", None, None, [unplaced(stray, env)])
            )
    return out


_ADVICE = re.compile(r" — (run `provision [^`]*`.*|restart it)$")


def _one_way_out(secret: SecretStatus | None, clusters: list[ClusterStatus]) -> None:
    """An unfinished rotation explains a secret written without its fingerprint, an old token
    and clusters not yet restarted; finishing it (the one command `status` names) is the way
    out of each, so no problem names a command of its own (an `apply` or a hand restart now
    would contradict it)."""
    if secret is not None and secret.problems:
        secret.problems[:] = [
            "the secret holds the value the unfinished rotation wrote (its fingerprint follows when it finishes)"
            if "rewritten outside" in p
            else "the secret still holds the token the unfinished rotation's refresh revoked"
            if "no longer honours" in p
            else _ADVICE.sub("", p)
            for p in secret.problems
        ]
    for c in clusters:
        c.problems[:] = [_ADVICE.sub("", p) for p in c.problems]


def _secret_status(listed: Mapping[str, int], env: Environment, creds: DlzCredentials) -> SecretStatus:
    """Freshness from the workspace alone (provisioner.sas.secret_value): the state holds no token."""
    fresh = judge_freshness(listed, env, creds)
    status = SecretStatus(
        fresh.scope, fresh.key, fresh.present, fresh.last_updated, fresh.holds_current, updated_ms=fresh.updated_ms
    )
    if not fresh.present:
        status.problems.append(f"secret {fresh.scope}/{fresh.key} is missing — run `provision apply`")
    elif fresh.rewritten_outside:
        status.problems.append("the secret was rewritten outside the tool — run `provision apply` to put it back")
    elif fresh.holds_current is False:
        status.problems.append(SECRET_HOLDS_REVOKED)
    return status


def _cluster_status(
    env: Environment,
    spec: ClusterSpec,
    cluster_id: str | None,
    reading: WorkspaceReading,
    creds: DlzCredentials,
    secret_ms: int | None,
    oracle: Oracle | None,
) -> ClusterStatus:
    if cluster_id is None:
        return ClusterStatus(
            spec.name, None, "NOT_CREATED", "unknown", None, None, ["not created yet — run `provision apply`"]
        )
    info = reading.clusters[cluster_id]
    if isinstance(info, WorkspaceError):
        if cluster_gone(info):
            return ClusterStatus(
                spec.name,
                cluster_id,
                "DELETED",
                "unknown",
                None,
                None,
                ["deleted outside Terraform — run `provision apply` to recreate it"],
            )
        return ClusterStatus(spec.name, cluster_id, "UNKNOWN", "unknown", None, None, [f"cannot read it: {said(info)}"])
    state = str(info.get("state", "UNKNOWN"))
    started = last_start_ms(info) or None
    out = ClusterStatus(spec.name, cluster_id, state, "current", None, ms_to_iso(started))
    warning = purge_warning(info, cluster_id in reading.pinned, reading.read_at_ms)
    if warning:
        out.warnings.append(warning)
    live = info.get("spark_conf") or {}
    out.sas_entry = _sas_entry(live.get(creds.spark_conf_key), env, creds)
    if out.sas_entry == "missing":
        out.problems.append(f"spark_conf lacks {creds.spark_conf_key} (edited outside the tool?)")
    elif out.sas_entry == "different":
        what = mode_of(env).different_entry()
        out.problems.append(f"spark_conf {creds.spark_conf_key} holds {what} (edited or refreshed outside the tool)")
    elif state == "RUNNING" and secret_ms is not None and (started or 0) < secret_ms:
        out.sas_entry = "stale"
        out.problems.append("running since before the secret's current value was written — restart it")
    # Only keys provision.yaml sets count: keys the workspace adds (cluster policies) are not
    # drift, nor keys the real provider diff-suppresses (Terraform never shows them either).
    for k, v in sorted(spec.spark_conf.items()):
        if k not in DIFF_SUPPRESSED_SPARK_CONF and live.get(k) != v:
            out.problems.append(f"spark_conf {k} is {'missing' if k not in live else 'not as configured'}")
    if oracle is not None and state == "RUNNING":
        out.dlz_access = oracle(cluster_id)
        if not out.dlz_access:
            out.problems.append(DLZ_ORACLE_PROBLEM)
    return out


def _sas_entry(value: Any, env: Environment, creds: DlzCredentials) -> str:
    if value is None:
        return "missing"
    expected = mode_of(env).expected_entry(env, creds)
    return "current" if value == expected else "different"


def ms_to_iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
