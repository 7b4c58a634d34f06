"""`provision status`: token expiry, and whether every managed cluster really uses the current token.

Sources, all read-only: AEP (the current token and its expiry), the Terraform state
(`terraform state pull`: which cluster ids we manage), and the workspace API (each
cluster's live state and spark_conf; the secret's `last_updated_timestamp` and the
fingerprint key the tool writes beside it, provisioner.dlz_secret). In sandbox mode the
DLZ oracle also says whether a running cluster can actually reach the landing zone.

Drift (exit 4): the SAS entry is missing or not what the config renders (inline: the
current token; secret_scope: the `{{secrets/scope/key}}` reference); a key set in
provision.yaml is missing or different; the secret is missing, holds a token other than
the current one (a refresh outside the tool) or was rewritten outside the tool; a RUNNING
cluster started before the secret's current value was written; a configured cluster is
missing; (sandbox) a running cluster cannot reach the DLZ. Keys the workspace adds
itself (cluster policies) are never drift. Otherwise exit 3 when the token expires within
`sas.warn_days`, else 0. Errors exit 1. The --json document is described in docs/status-json.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.console import Console
from provisioner.converge import last_start_ms
from provisioner.errors import ExitCode, ProvisionError
from provisioner.workflow import RunContext, fetch_credentials, open_context, read_env_state

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config import ClusterSpec, Environment
    from provisioner.databricks.workspace import WorkspaceClient
    from provisioner.terraform import TerraformState

SCHEMA_VERSION = 1
_STATUS_WORD = {ExitCode.HEALTHY: "healthy", ExitCode.EXPIRING: "expiring", ExitCode.DRIFT: "drift"}


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
    sas_entry: str  # current | missing | different | stale | unknown
    dlz_access: bool | None  # sandbox oracle; None in real mode or when not running
    last_started: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return bool(self.problems)


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        creds = fetch_credentials(ctx, env)
        state = read_env_state(ctx, env)
        client = ctx.workspace_client(env)
        secret = _secret_status(client, env, creds, state) if env.sas.mode == "secret_scope" else None
        secret_ms = secret.updated_ms if secret is not None else None
        ids = state.clusters()
        clusters = [_cluster_status(ctx, client, env, c, ids.get(c.name), creds, secret_ms) for c in env.clusters]
        unfinished = _unfinished_rotation(env)
        code = _exit_code(creds, env, secret, clusters, unfinished)
        doc = _document(env, creds, secret, clusters, code)
        doc["rotationUnfinished"] = unfinished is not None
        if args.json:
            console.result(json.dumps(doc, indent=2, sort_keys=True))
        else:
            _print_table(console, doc, secret, clusters)
        return code


# ---- gathering -------------------------------------------------------------------------


def _secret_status(
    client: WorkspaceClient, env: Environment, creds: DlzCredentials, state: TerraformState
) -> SecretStatus:
    """Freshness from the workspace alone (provisioner.dlz_secret): the state holds no token."""
    from provisioner.dlz_secret import read_freshness

    fresh = read_freshness(client, env, creds)
    status = SecretStatus(
        fresh.scope, fresh.key, fresh.present, fresh.last_updated, fresh.holds_current, updated_ms=fresh.updated_ms
    )
    if not fresh.present:
        status.problems.append(f"secret {fresh.scope}/{fresh.key} is missing — run `provision apply`")
    elif fresh.rewritten_outside:
        status.problems.append("the secret was rewritten outside the tool — run `provision apply` to put it back")
    elif fresh.holds_current is False:
        status.problems.append(
            "the secret holds a token other than AEP's current one (a refresh outside the tool?) — "
            "run `provision rotate --resume`"
        )
    return status


def _cluster_status(
    ctx: RunContext,
    client: WorkspaceClient,
    env: Environment,
    spec: ClusterSpec,
    cluster_id: str | None,
    creds: DlzCredentials,
    secret_ms: int | None,
) -> ClusterStatus:
    from provisioner.databricks.workspace import WorkspaceError

    if cluster_id is None:
        return ClusterStatus(
            spec.name, None, "NOT_CREATED", "unknown", None, None, ["not created yet — run `provision apply`"]
        )
    try:
        info = client.get_cluster(cluster_id)
    except WorkspaceError as exc:
        if exc.not_found:
            return ClusterStatus(
                spec.name,
                cluster_id,
                "DELETED",
                "unknown",
                None,
                None,
                ["deleted outside the tool — run `provision apply` to recreate it"],
            )
        raise ProvisionError(f"status: cannot read cluster {spec.name} ({cluster_id}): {exc.message}") from None
    state = str(info.get("state", "UNKNOWN"))
    started = last_start_ms(info) or None
    out = ClusterStatus(spec.name, cluster_id, state, "current", None, _ms_to_iso(started))
    live = info.get("spark_conf") or {}
    out.sas_entry = _sas_entry(live.get(creds.spark_conf_key), env, creds)
    if out.sas_entry == "missing":
        out.problems.append(f"spark_conf lacks {creds.spark_conf_key} (edited outside the tool?)")
    elif out.sas_entry == "different":
        what = "a token other than AEP's current one" if env.sas.mode == "inline" else "not the secret reference"
        out.problems.append(f"spark_conf {creds.spark_conf_key} holds {what} (edited or refreshed outside the tool)")
    elif state == "RUNNING" and secret_ms is not None and (started or 0) < secret_ms:
        out.sas_entry = "stale"
        out.problems.append("running since before the secret's current value was written — restart it")
    # Only keys provision.yaml sets count: keys the workspace adds (cluster policies) are not drift.
    for k, v in sorted(spec.spark_conf.items()):
        if live.get(k) != v:
            out.problems.append(f"spark_conf {k} is {'missing' if k not in live else 'not as configured'}")
    if ctx.sandbox is not None and state == "RUNNING":
        from provisioner.sandbox import workspace_key

        out.dlz_access = ctx.sandbox.store.dlz_access(workspace_key(env.databricks_host), cluster_id)
        if not out.dlz_access:
            out.problems.append("cannot reach the DLZ with its running Spark config")
    return out


def _sas_entry(value: Any, env: Environment, creds: DlzCredentials) -> str:
    if value is None:
        return "missing"
    expected = env.sas.secret_reference if env.sas.mode == "secret_scope" else creds.sas_token.reveal()
    return "current" if value == expected else "different"


def _unfinished_rotation(env: Environment) -> str | None:
    """The `provision rotate` marker's path when a rotation failed after its refresh (local state only)."""
    from provisioner.rotation_marker import RotationMarker

    marker = RotationMarker.of(env)
    return str(marker.path) if marker.load() is not None else None


def _exit_code(
    creds: DlzCredentials,
    env: Environment,
    secret: SecretStatus | None,
    clusters: list[ClusterStatus],
    unfinished: str | None = None,
) -> ExitCode:
    """Drift beats expiry: a cluster that cannot write today matters more than one that will not next week."""
    if unfinished or (secret is not None and secret.problems) or any(c.drift for c in clusters):
        return ExitCode.DRIFT
    if creds.days_left() <= env.sas.warn_days:
        return ExitCode.EXPIRING
    return ExitCode.HEALTHY


# ---- output ----------------------------------------------------------------------------


def _document(
    env: Environment,
    creds: DlzCredentials,
    secret: SecretStatus | None,
    clusters: list[ClusterStatus],
    code: ExitCode,
) -> dict[str, Any]:
    """The stable --json shape (docs/status-json.md). Never a token: only dates, ids, states."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "environment": env.name,
        "status": _STATUS_WORD[code],
        "exitCode": int(code),
        "token": {
            "mode": env.sas.mode,
            "containerName": creds.container_name,
            "storageAccountName": creds.storage_account_name,
            "sparkConfKey": creds.spark_conf_key,
            "expiryDate": creds.expiry_date.isoformat(),
            "daysLeft": creds.days_left(),
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
                "lastStarted": c.last_started,
                "drift": c.drift,
                "problems": c.problems,
            }
            for c in clusters
        ],
    }


def _print_table(
    console: Console, doc: dict[str, Any], secret: SecretStatus | None, clusters: list[ClusterStatus]
) -> None:
    token = doc["token"]
    console.line(
        f"environment {doc['environment']}: token expires {token['expiryDate']} ({token['daysLeft']} days left, "
        f"warning at {token['warnDays']}); mode {token['mode']}"
    )
    if secret is not None:
        console.line(f"secret {secret.scope}/{secret.key}: last written {secret.last_updated or '—'}")
        for problem in secret.problems:
            console.line(f"  ! {problem}")
    rows = [("CLUSTER", "ID", "STATE", "SAS", "DLZ")] + [
        (c.name, c.cluster_id or "—", c.state, c.sas_entry, _yes_no(c.dlz_access)) for c in clusters
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for c in clusters:
        for problem in c.problems:
            console.line(f"  ! {c.name}: {problem}")
    if doc.get("rotationUnfinished"):
        console.line("  ! a rotation failed after its refresh — finish it with `provision rotate --resume`")
    console.line(f"status: {doc['status']} (exit {doc['exitCode']})")


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")


def _ms_to_iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
