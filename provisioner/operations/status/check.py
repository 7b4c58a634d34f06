"""What `provision status` reports: the drift analysis (provisioner.operations.status.drift) fed from the run —
Terraform state, the workspace, AEP's current token, the target's DLZ oracle, the rotation
journal — with what `--probe` found on the clusters, the Databricks token of each cluster's AEP
base connection (provisioner.operations.connection_token), and the stable --json document
(docs/status-json.md). Exit code: 0 healthy, 3 expiring, 4 drift (or a connection token
expired, revoked or unknown), 1 error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.config.model import Environment
from provisioner.errors import ExitCode, ProvisionError
from provisioner.operations.connection_token import EXPIRING, OK, TokenState
from provisioner.operations.rotate.journal import journal_of
from provisioner.operations.status.drift import DLZ_ORACLE_PROBLEM, STATUS_WORD, StatusReport, status_report
from provisioner.operations.verify import probe_env
from provisioner.reach.probe import ERROR, FAILED
from provisioner.run.context import RunContext, fetch_credentials_aside, read_env_state
from provisioner.run.warmup import in_thread

if TYPE_CHECKING:
    from collections.abc import Mapping

    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.operations.status.drift import Oracle
    from provisioner.operations.verify import ProbeOptions
    from provisioner.reach.probe import ClusterProbe

SCHEMA_VERSION = 1


@dataclass
class Status:
    report: StatusReport
    probes: list[ClusterProbe] | None  # None: not probed
    document: dict[str, Any]  # the --json shape
    connection_tokens: list[TokenState]
    exit_code: ExitCode


def check_status(ctx: RunContext, env: Environment, probe: ProbeOptions | None = None) -> Status:
    """Read everything `status` compares (read-only); with `probe`, ask every running cluster too.

    Nothing here waits for what it does not need: AEP, the Terraform state and the
    workspace's client (the SDK's host metadata) start together; the cluster reads start as
    soon as state and client are there, beside the identity's proof (SCIM Me)."""
    fetched = fetch_credentials_aside(ctx, env, render_next=False)
    state = in_thread(lambda: read_env_state(ctx, env), "state")
    connections = in_thread(lambda: _connections(ctx, env), "connections")
    client = ctx.reading_client(env)

    def credentials() -> DlzCredentials:
        # A refused login fails the cluster reads too: name it first, as the identity's error.
        ctx.identity(env)
        return fetched()

    read = state()
    report = status_report(
        env,
        read,
        client,
        credentials,
        oracle=_oracle(ctx, env, read.clusters()),
        unfinished_rotation=_unfinished_rotation(ctx, env),
    )
    identity = ctx.identity(env)
    probes = None
    if probe is not None:
        probes = probe_env(ctx, env, report.creds, probe, read.clusters())  # the state read above: once
        _with_probes(report, probes)
    doc = document(report, probes)
    doc["databricksIdentity"] = identity.as_json()
    doc["dlz"] = {"backend": ctx.dlz_backend(), "probed": probes is not None}
    tokens, unread = _connection_tokens(ctx, env, report, connections)
    code = max(report.exit_code, _tokens_code(tokens))
    doc["connectionTokens"] = {
        "warnDays": env.connection.warn_days,
        "items": [t.as_json() for t in tokens],
        "error": unread,
    }
    doc["status"], doc["exitCode"] = STATUS_WORD[code], int(code)
    return Status(report, probes, doc, tokens, code)


def _connections(ctx: RunContext, env: Environment) -> list[dict[str, Any]] | str:
    """This workspace's Databricks base connections in AEP, or why they could not be listed."""
    from provisioner.aep.flowservice import FlowServiceClient, norm_domain

    want = norm_domain(env.databricks_host)
    try:
        return [
            item
            for item in FlowServiceClient(ctx.aep_client(env)).connections()
            if norm_domain(str(((item.get("auth") or {}).get("params") or {}).get("domain", ""))) == want
        ]
    except ProvisionError as exc:
        return str(exc)


def _connection_tokens(
    ctx: RunContext, env: Environment, report: StatusReport, listed: Callable[[], list[dict[str, Any]] | str]
) -> tuple[list[TokenState], str | None]:
    """The token of each managed cluster's connection; AEP unreadable is said, not an exit code."""
    from provisioner.operations.connection_token import token_states

    connections = listed()
    if isinstance(connections, str):
        return [], connections
    by_cluster = {c.cluster_id: c.name for c in report.clusters if c.cluster_id}
    mine: dict[str, dict[str, Any]] = {}
    for item in connections:
        name = by_cluster.get(str(((item.get("auth") or {}).get("params") or {}).get("clusterId", "")))
        if name is not None and name not in mine:
            mine[name] = item
    return token_states(ctx.reading_client(env), env, mine), None


def _tokens_code(tokens: list[TokenState]) -> ExitCode:
    if any(t.state not in (OK, EXPIRING) for t in tokens):
        return ExitCode.DRIFT
    return ExitCode.EXPIRING if any(t.state == EXPIRING for t in tokens) else ExitCode.HEALTHY


def _oracle(ctx: RunContext, env: Environment, cluster_ids: Mapping[str, str]) -> Oracle | None:
    """The target's DLZ oracle, when it has one (the sandbox): asked once for every cluster of
    the state, at the first question. Asked once per cluster it read the sandbox's whole state
    twice per cluster: 200 clusters took ~30 s of a status whose workspace calls took 1 s."""
    if ctx.target.dlz_access(env, {}) is None:
        return None
    answers: dict[str, bool | None] = {}

    def reaches(cluster_id: str) -> bool:
        if cluster_id not in answers:
            wanted = {cid: cid for cid in ({*cluster_ids.values(), cluster_id} - answers.keys())}
            answers.update(ctx.target.dlz_access(env, wanted) or {})
            answers.setdefault(cluster_id, None)
        return bool(answers[cluster_id])

    return reaches


def _with_probes(report: StatusReport, probes: list[ClusterProbe]) -> None:
    """--probe: what each running cluster's own listing of the DLZ says replaces the oracle's guess."""

    by_name = {p.name: p for p in probes}
    for c in report.clusters:
        probe = by_name.get(c.name)
        if probe is None or probe.state != "RUNNING":
            continue
        c.problems = [p for p in c.problems if p != DLZ_ORACLE_PROBLEM]
        c.dlz_access = probe.reached
        if probe.outcome == FAILED:
            c.problems.append(f"cannot reach the DLZ: {probe.detail}")
        elif probe.outcome == ERROR:
            c.problems.append(f"the DLZ probe did not run: {probe.detail}")


def _unfinished_rotation(ctx: RunContext, env: Environment) -> str | None:
    """What the rotation journal (beside the environment's lock, seen by every runner) says of a
    rotation that began and did not finish, or None."""

    entry = journal_of(ctx, env).unfinished()
    return None if entry is None else entry.describe()


def document(report: StatusReport, probes: list[ClusterProbe] | None = None) -> dict[str, Any]:
    """The stable --json shape (docs/status-json.md). Never a token: only dates, ids, states."""
    env, creds, secret, code = report.env, report.creds, report.secret, report.exit_code
    probed = {p.name: p for p in probes or []}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "environment": env.name,
        "status": STATUS_WORD[code],
        "exitCode": int(code),
        "rotationNeeded": None if report.replaced is None else report.replaced.reason(),
        "rotationUnfinished": report.unfinished_rotation is not None,
        "token": {
            "mode": env.sas.mode,
            **creds.as_json(),
            "warnDays": env.sas.warn_days,
            "expiring": creds.days_left() <= env.sas.warn_days,
        },
        "secret": None
        if secret is None
        else {
            "scope": secret.scope,
            "key": secret.key,
            "present": secret.present,
            "lastUpdated": secret.last_updated,
            "holdsCurrentToken": secret.holds_current_token,
            "problems": secret.problems,
        },
        "clusters": [
            {
                "name": c.name,
                "clusterId": c.cluster_id,
                "state": c.state,
                "sasEntry": c.sas_entry,
                "dlzAccess": c.dlz_access,
                "dlzProbe": probed[c.name].as_json() if c.name in probed else None,
                "lastStarted": c.last_started,
                "drift": c.drift,
                "problems": c.problems,
                "warnings": c.warnings,
            }
            for c in report.clusters
        ],
    }
