"""`provision rotate`: refresh the DLZ SAS token and put it live on every cluster, fast.

AEP revokes the old token the instant `POST …&action=refresh` answers, so the order is:

1. before the point of no return — GET the current credentials, render, init, a pre-flight
   plan with the current token (proves provider, backend and workspace work and shows any
   pending change that would otherwise ride along), read the managed cluster ids, ask;
2. write a rotation marker, refresh;
3. at once: one `terraform apply -auto-approve` (plan held in memory: one process and one
   set of provider starts fewer than plan -out + apply), then converge — restart what still
   runs on the old token and wait until every running cluster is RUNNING on the new one.

The revocation window (refresh answer → every cluster live) is measured and printed.
Anything failing after the refresh prints the exact `provision rotate --resume …` command,
which GETs the (new) token and converges without refreshing again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.commands._confirm import confirm, require_approval_possible
from provisioner.console import Console
from provisioner.converge import ConvergeReport, converge_clusters, last_start_ms
from provisioner.errors import ExitCode, ProvisionError
from provisioner.rotation_marker import RotationMarker
from provisioner.terraform import Applied, ApplyOptions, PlanOptions, plan_and_apply, read_state, saved_plan
from provisioner.workflow import RunContext, default_plan_file, fetch_credentials, open_context, render_env

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config import Environment


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def recovery_command(args: argparse.Namespace, env: Environment) -> str:
    """The exact command that finishes this rotation without another refresh."""
    parts = ["provision", "rotate", "--resume", "--env", env.name]
    if args.config != "provision.yaml":
        parts += ["--config", args.config]
    if args.sandbox:
        parts.append("--sandbox")
    if args.auto_approve:
        parts.append("--auto-approve")
    return shlex.join(parts)


# ---- the command -----------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> int:
    with open_context(args, console) as ctx:
        (env,) = ctx.config.select(args.env)
        marker = RotationMarker.of(env)
        resume = recovery_command(args, env)
        if args.resume:
            return _resume(ctx, env, args, console, marker, resume)
        unfinished = marker.load()
        if unfinished is not None:
            raise ProvisionError(
                f"{env.name}: a rotation started {unfinished.get('started_at', '?')} has not finished "
                f"({marker.path}) — refreshing again would revoke the token it issued; "
                f"finish it with `{resume}`"
            )
        creds = fetch_credentials(ctx, env)
        days = creds.days_left()
        if args.if_expiring_within is not None and days > args.if_expiring_within:
            console.ok(
                f"{env.name}: the SAS token expires on {creds.expiry_date.isoformat()} ({days} days left), "
                f"not within {args.if_expiring_within} days — nothing to do"
            )
            return 0
        require_approval_possible(ctx, args.auto_approve, "rotate")
        ready = _prepare(ctx, env, creds, console, args.auto_approve)
        question = (
            f"Refresh the SAS token of environment '{env.name}'? AEP revokes the current one at once; "
            f"{len(ready.cluster_ids)} managed cluster(s) get the new one ({len(ready.seen_starts)} running "
            "restart)."
        )
        if not confirm(ctx, args.auto_approve, question):
            console.warn("rotation cancelled; nothing changed")
            return 1
        return _rotate(ctx, env, creds, ready, console, marker, resume, args.timeout)


@dataclass(frozen=True)
class Prepared:
    cluster_ids: dict[str, str]  # resource name -> cluster id
    seen_starts: dict[str, int]  # running clusters -> their last start (ms), before the refresh


def _prepare(
    ctx: RunContext, env: Environment, creds: DlzCredentials, console: Console, auto_approve: bool
) -> Prepared:
    """Everything that can fail before the point of no return, done before it."""
    render_env(ctx, env, creds)
    runner = ctx.runner(env, creds.sas_token, console)
    runner.init()
    plan_file = default_plan_file(env)
    console.info(f"{env.name}: pre-flight plan with the current token")
    others: list[str] = []
    with saved_plan(runner, PlanOptions(out=plan_file)) as outcome:
        if outcome is ExitCode.CHANGES:
            others = _changes_besides_token(runner.show_json(plan_file), env, creds)
    if others:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        if auto_approve:
            raise ProvisionError(
                f"{env.name}: pending changes besides the SAS token ({listed}) — review and apply them first "
                "(`provision plan`, `provision apply`), then rotate; a rotation never applies unreviewed changes"
            )
        console.warn(f"{env.name}: pending changes besides the token ({listed}) are applied with the new token")
    cluster_ids = read_state(runner, init=False).clusters()
    # The PAT is needed right after the refresh (restarts); fail now if it is missing or wrong.
    client = ctx.workspace_client(env)
    seen_starts: dict[str, int] = {}
    for name, cid in cluster_ids.items():
        info = client.get_cluster(cid)
        if info.get("state") == "RUNNING":
            seen_starts[name] = last_start_ms(info)
    console.info(f"{env.name}: ready — {len(cluster_ids)} managed cluster(s), {len(seen_starts)} running")
    return Prepared(cluster_ids, seen_starts)


def _changes_besides_token(plan: dict[str, Any], env: Environment, creds: DlzCredentials) -> list[str]:
    """Addresses the pre-flight plan changes for another reason than the SAS token.

    Token-only changes (the secret replaced, a cluster's SAS entry — e.g. after a refresh
    outside the tool) are what a rotation does anyway; anything else needs a review first.
    """
    from provisioner.plan_summary import summarize

    out = []
    for res in summarize(plan, env, creds).resources:
        if res.action == "no-op":
            continue
        token_only = (res.type == "databricks_secret" and res.action == "replace") or (
            res.type == "databricks_cluster"
            and res.action == "update"
            and res.changed == [f"spark_conf[{creds.spark_conf_key}]"]
        )
        if not token_only:
            out.append(f"{res.address} {res.action}")
    return out


def _rotate(
    ctx: RunContext,
    env: Environment,
    old: DlzCredentials,
    ready: Prepared,
    console: Console,
    marker: RotationMarker,
    resume: str,
    timeout: float,
) -> int:
    # seen_starts (ms timestamps, no secret) lets a --resume tell restarted clusters from stale ones.
    marker.write(environment=env.name, started_at=_now_iso(), refreshed_at=None, seen_starts=ready.seen_starts)
    new = _refresh(ctx, env, old, marker, resume)
    opened = time.monotonic()
    try:
        marker.write(refreshed_at=_now_iso(), new_expiry_date=new.expiry_date.isoformat())
        expires = new.expiry_date.isoformat()
        console.info(f"{env.name}: token refreshed (expires {expires}); the old one is revoked")
        _sandbox_report(ctx, env, ready.cluster_ids, console, "right after the refresh")
        report = _apply_and_converge(ctx, env, new, ready, console, timeout, resume)
    except BaseException as exc:
        raise _after_refresh_failure(exc, console, resume) from None
    window = time.monotonic() - opened
    marker.clear()
    _sandbox_report(ctx, env, ready.cluster_ids, console, "after the rotation")
    console.ok(f"{env.name}: rotated — {_describe(report)}; token expires {new.expiry_date.isoformat()}")
    console.line(f"revocation window: {window:.1f}s (refresh answered → running clusters on the new token)")
    return 0


def _refresh(
    ctx: RunContext, env: Environment, old: DlzCredentials, marker: RotationMarker, resume: str
) -> DlzCredentials:
    """POST …&action=refresh. When the answer is lost, ask AEP (GET) whether it took effect."""
    client = ctx.aep_client(env)
    try:
        return client.refresh_credentials()
    except (ProvisionError, KeyboardInterrupt) as exc:
        try:
            now = client.get_credentials()
        except BaseException:
            raise ProvisionError(
                f"{exc} — AEP may or may not have issued a new token; run `{resume}` (it converges on "
                "whatever token AEP holds now and is harmless if nothing changed)"
            ) from None
        if now.sas_token == old.sas_token:
            marker.clear()  # nothing happened: state and token are as before
            raise
        return now  # the refresh happened although its answer was lost: carry on


def _apply_and_converge(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    ready: Prepared,
    console: Console,
    timeout: float,
    resume: str,
) -> ConvergeReport:
    runner = ctx.runner(env, creds.sas_token, console)
    # Refresh stays on: reading live clusters costs one parallel round of GETs, and applying
    # against a stale view (a cluster deleted outside) would fail inside the window.
    runner.apply(ApplyOptions(plan_file=None))
    cluster_ids = read_state(runner, init=False).clusters()
    # seen_starts: a cluster still showing its pre-refresh start has not restarted yet, even
    # if it reads RUNNING (inline mode: the edit's restart may not be visible yet).
    return converge_clusters(
        ctx,
        env,
        console,
        cluster_ids=cluster_ids,
        timeout=timeout,
        retry_hint=f"run `{resume}`",
        seen_starts=ready.seen_starts,
    )


def _after_refresh_failure(exc: BaseException, console: Console, resume: str) -> BaseException:
    """The old token is gone: whatever failed, say exactly how to finish."""
    line = f"the old SAS token is already revoked — finish the rotation with: {resume}"
    if isinstance(exc, ProvisionError):
        if resume in str(exc):
            return exc
        failure = ProvisionError(f"{exc} — {line}")
        failure.exit_code = exc.exit_code
        return failure
    console.error(line)  # Ctrl-C or a bug: the handler adds its own line after this one
    return exc


def _resume(
    ctx: RunContext,
    env: Environment,
    args: argparse.Namespace,
    console: Console,
    marker: RotationMarker,
    resume: str,
) -> int:
    """GET the current (already refreshed) token and converge on it; never refresh."""
    require_approval_possible(ctx, args.auto_approve, "resume the rotation")
    unfinished = marker.load()
    creds = fetch_credentials(ctx, env)
    render_env(ctx, env, creds)
    runner = ctx.runner(env, creds.sas_token, console)
    runner.init()
    applied = plan_and_apply(
        runner,
        PlanOptions(out=default_plan_file(env)),
        lambda: confirm(ctx, args.auto_approve, f"Apply this plan to environment '{env.name}'?"),
    )
    if applied is Applied.DECLINED:
        console.warn("resume cancelled; clusters may still hold the revoked token")
        return ExitCode.ERROR
    cluster_ids = read_state(runner, init=False).clusters()
    seen = (unfinished or {}).get("seen_starts")
    report = converge_clusters(
        ctx,
        env,
        console,
        cluster_ids=cluster_ids,
        timeout=args.timeout,
        retry_hint=f"run `{resume}` again",
        seen_starts={k: int(v) for k, v in seen.items()} if isinstance(seen, dict) else None,
    )
    marker.clear()
    _sandbox_report(ctx, env, cluster_ids, console, "after the resume")
    since = _since(unfinished)
    expires = creds.expiry_date.isoformat()
    console.ok(f"{env.name}: rotation finished — {_describe(report)}; token expires {expires}")
    if since is not None:
        console.line(f"revocation window: {since:.1f}s (refresh answered → running clusters on the new token)")
    return 0


def _since(marker_doc: dict[str, Any] | None) -> float | None:
    """Wall-clock seconds since the recorded refresh (monotonic time does not survive a process)."""
    stamp = (marker_doc or {}).get("refreshed_at")
    if not isinstance(stamp, str):
        return None
    try:
        return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return None


def _describe(report: ConvergeReport) -> str:
    parts = []
    if report.restarted:
        parts.append(f"restarted {', '.join(report.restarted)}")
    if report.waited:
        parts.append(f"waited for {', '.join(report.waited)}")
    if report.running:
        parts.append(f"already running on the new token: {', '.join(report.running)}")
    if report.skipped_terminated:
        parts.append(f"terminated (new token at next start): {', '.join(report.skipped_terminated)}")
    return "; ".join(parts) or "no managed clusters"


def _sandbox_report(
    ctx: RunContext, env: Environment, cluster_ids: dict[str, str], console: Console, when: str
) -> None:
    """Sandbox only: ask the DLZ oracle which clusters can reach the landing zone now.

    One local state-file read per cluster (milliseconds); in real mode there is no oracle.
    """
    if ctx.sandbox is None or not cluster_ids:
        return
    from provisioner.sandbox import workspace_key

    key = workspace_key(env.databricks_host)
    store = ctx.sandbox.store
    running = {n: c for n, c in cluster_ids.items() if (store.get_cluster(key, c) or {}).get("state") == "RUNNING"}
    reach = sorted(n for n, c in running.items() if store.dlz_access(key, c))
    console.info(
        f"sandbox: {when}, {len(reach)}/{len(running)} running cluster(s) reach the DLZ"
        + (f" ({', '.join(reach)})" if reach else "")
    )
