"""Rotating the DLZ SAS token: refresh it at AEP and put the new one live on every cluster, fast.

AEP revokes the old token the instant `POST …&action=refresh` answers: from then until every
running cluster uses the new one (the *revocation window*) nothing can reach the landing zone.

secret_scope mode — no Terraform inside the window:
1. pre-flight, everything that can fail: GET the credentials, render, init, read the state
   (cluster ids), check the scope (exists, Databricks-backed), list and write-probe it
   (WRITE permission), read every cluster (the PAT works), ask;
2. record in the rotation journal (provisioner.operations.rotate.journal, beside the
   environment's lock) that a rotation begins, refresh;
3. at once: `secrets/put` (an in-place overwrite: a cluster starting at any instant resolves
   the old or the new value, never nothing), then restart the running clusters and wait
   until each is RUNNING on the new value (provisioner.databricks.converge);
4. after the window: reconcile the state (`terraform apply -refresh-only`); a failure there
   is a warning, the rotation itself is done.

inline mode keeps the Terraform path: a pre-flight plan with the current token (provider,
backend and pending changes), then after the refresh one `terraform apply -auto-approve`
and converge.

Anything failing after the refresh names the `provision rotate --resume …` command, which
GETs the (new) token and converges on it without refreshing again; a plain `rotate` that
finds the journal unfinished (a killed run, on any runner) does the same. The journal records
each phase, so the value a killed run wrote is kept (not written again, which would make the
clusters it already restarted stale) and those clusters are not restarted twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.console import Console
from provisioner.databricks.converge import converge_clusters
from provisioner.databricks.converge_report import ConvergeReport
from provisioner.errors import ExitCode, ProvisionError
from provisioner.lock.holder import Holder
from provisioner.operations.rotate.journal import JournalEntry, RotationJournal, journal_of
from provisioner.operations.rotate.preflight import Prepared, Rotation, check_clusters
from provisioner.run.approval import confirm, require_approval_possible
from provisioner.run.context import (
    RunContext,
    default_plan_file,
    fetch_credentials,
    identify,
    render_env,
)
from provisioner.run.warmup import in_thread
from provisioner.sas import secret_value
from provisioner.sas.mode import RotationFacts
from provisioner.sas.modes import mode_of
from provisioner.terraform import read_state

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config.model import Environment


@dataclass(frozen=True)
class Rotated:
    code: int
    # The managed clusters' ids as the rotation left them (those it converged), for the closing
    # probe: no state read after the window (issue 24). None: the rotation stopped before it knew them.
    clusters: Mapping[str, str] | None = None


def rotate(ctx: RunContext, req: Rotation, console: Console, if_expiring_within: int | None) -> Rotated:
    env, journal = req.env, journal_of(ctx, req.env)
    identify(ctx, env)  # before any AEP call or change: who this run is, and that it authenticates
    mode = mode_of(env)
    # Each fact once (issue 25): this GET, one state read and one scope listing serve every
    # step before the window.
    creds = fetch_credentials(ctx, env)
    facts = read_facts(ctx, env, Console(ctx.console.out, ctx.console.err, quiet=True))
    unfinished = journal.unfinished()
    if unfinished is not None and unfinished.never_refreshed(secret_value.fingerprint(creds.sas_token)):
        journal.forget()  # stopped before AEP took the refresh: nothing to finish
    elif unfinished is not None:
        # Refreshing again would revoke the token that rotation put (or was putting) live.
        console.warn(f"{env.name}: {unfinished.describe()} — finishing it (no new refresh)")
        return resume(ctx, req, console, known=(creds, facts))
    replaced = mode.token_replaced(facts.state, env, creds, facts.listed)
    if replaced is not None:
        # AEP already issued a new token (expired and refreshed on read, or refreshed outside):
        # put that one live; refreshing again would only revoke it too.
        console.warn(f"{env.name}: rotation needed without a refresh — {replaced.reason()}")
        require_approval_possible(ctx, req.auto_approve, "rotate")
        issued = replaced.issued_on.isoformat()
        return resume(
            ctx,
            req,
            console,
            known=(creds, facts),
            finished=f"rotated onto the token AEP issued on {issued} (no new refresh)",
        )
    days = creds.days_left()
    if if_expiring_within is not None and days > if_expiring_within:
        console.ok(
            f"{env.name}: the SAS token expires on {creds.expiry_date.isoformat()} ({days} days left), "
            f"not within {if_expiring_within} days — nothing to do"
        )
        return Rotated(ExitCode.OK, facts.state.clusters())
    require_approval_possible(ctx, req.auto_approve, "rotate")
    facts = _rendered(ctx, env, creds, facts, console)
    cluster_ids, facts = mode.prepare(
        ctx, env, creds, facts, console, plan_file=default_plan_file(env), auto_approve=req.auto_approve
    )
    ready = check_clusters(ctx, env, cluster_ids, console)
    question = (
        f"Refresh the SAS token of environment '{env.name}'? AEP revokes the current one at once; "
        f"{len(ready.cluster_ids)} managed cluster(s) get the new one ({len(ready.seen_starts)} running "
        "restart)."
    )
    if not confirm(ctx, req.auto_approve, question):
        console.warn("rotation cancelled; nothing changed")
        return Rotated(ExitCode.ERROR)
    mode.probe(ctx, env)  # the last thing that can fail before the point of no return
    return _rotate(ctx, req, creds, ready, facts, console, journal)


def read_facts(ctx: RunContext, env: Environment, console: Console) -> RotationFacts:
    """The state (one read) and, where the mode has a scope and the state manages clusters, its
    listing: what says whether the workspace holds AEP's current token (`SasMode.token_replaced`)."""
    rendered = any(env.root_dir.glob("*.tf"))
    state = read_state(ctx.runner(env, None, console))
    listed = mode_of(env).list_secrets(ctx.workspace_client(env), env) if state.clusters() else None
    return RotationFacts(state, listed, rendered)


def _rendered(
    ctx: RunContext, env: Environment, creds: DlzCredentials, facts: RotationFacts, console: Console
) -> RotationFacts:
    """Render the root and init it if that changed its inputs (providers, backend)."""
    render_env(ctx, env, creds)
    if not facts.rendered:
        # Read again, justified: with no root on disk the state could not be reached (a fresh
        # checkout of a remote backend reads as empty); now it can.
        return read_facts(ctx, env, console)
    # Rendering changes the configuration, never the state: the one read stands.
    ctx.runner(env, None, console).init()
    return facts


# ---- the window --------------------------------------------------------------------------


def _rotate(
    ctx: RunContext,
    req: Rotation,
    old: DlzCredentials,
    ready: Prepared,
    facts: RotationFacts,
    console: Console,
    journal: RotationJournal,
) -> Rotated:
    env, mode = req.env, mode_of(req.env)
    # seen_starts (ms timestamps, no secret) lets a later run tell restarted clusters from stale
    # ones; the old token's fingerprint, whether the refresh happened.
    journal.begin(
        Holder.this_run("rotate", ctx.environ).where(), ready.seen_starts, secret_value.fingerprint(old.sas_token)
    )
    new = _refresh(ctx, env, old, journal, req.resume_command)
    opened = ctx.clock.monotonic()
    refreshed_at = _now_iso()
    written = False
    try:
        # First thing in the window, the one write the restarts need; all bookkeeping waits.
        mode.put_live(ctx, env, new)
        written = True
        # Before the restarts: a later run keeps the value this one wrote (see `_keep_what_it_wrote`).
        issued = {"refreshed_at": refreshed_at, "expiry_date": new.expiry_date.isoformat()}
        journal.mark("secret_written", **issued, fingerprint=secret_value.fingerprint(new.sas_token))
        console.info(f"{env.name}: token refreshed (expires {new.expiry_date.isoformat()}); the old one is revoked")
        changed = mode.apply_live(ctx, env, new, console)
        cluster_ids = ready.cluster_ids if changed is None else changed
        # Nothing but the secret changed the clusters read in the pre-flight: restart them
        # without reading each again (converge `known`); an apply just edited them.
        known = ready.seen_running if changed is None else None
        # Beside the first restarts, not before them: the journal's write is no reason to wait.
        marked = in_thread(lambda: journal.mark("restarts_requested"), "rotation-journal")
        report = _converge(
            ctx, env, console, cluster_ids, req, ready.seen_starts, f"run `{req.resume_command}`", known=known
        )
        marked()
    except BaseException as exc:
        if written and isinstance(exc, Exception):
            with contextlib.suppress(Exception):  # --resume writes value and fingerprint again anyway
                mode.after_window(ctx, env, new, facts)
        raise _after_refresh_failure(exc, console, req.resume_command) from None
    window = ctx.clock.monotonic() - opened
    mode.after_window(ctx, env, new, facts)
    journal.finish()
    console.ok(f"{env.name}: rotated — {describe(report)}; token expires {new.expiry_date.isoformat()}")
    console.line(f"revocation window: {window:.2f}s (refresh answered → running clusters on the new token)")
    mode.reconcile(ctx, env, console)
    # The reconcile's refresh changes no cluster's id (it would forget one deleted outside, which
    # check_clusters left out and converge would have failed on): the ids converged stand.
    return Rotated(ExitCode.OK, cluster_ids)


def _refresh(
    ctx: RunContext, env: Environment, old: DlzCredentials, journal: RotationJournal, resume: str
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
            journal.forget()  # nothing happened: state and token are as before
            raise
        return now  # the refresh happened although its answer was lost: carry on


def _converge(
    ctx: RunContext,
    env: Environment,
    console: Console,
    cluster_ids: dict[str, str],
    req: Rotation,
    seen_starts: dict[str, int] | None,
    retry_hint: str,
    known: dict[str, dict[str, Any]] | None = None,
) -> ConvergeReport:
    # seen_starts: a cluster still showing its pre-refresh start has not restarted yet, even
    # if it reads RUNNING (inline mode: the edit's restart may not be visible yet).
    return converge_clusters(
        ctx.workspace_client(env),
        cluster_ids,
        console,
        secret=env.sas.secret,
        seen_starts=seen_starts,
        known=known,
        timeout=req.timeout,
        retry_hint=retry_hint,
        max_parallel=env.databricks_max_parallel,
        clock=ctx.clock,
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


# ---- finishing a rotation that failed after its refresh ----------------------------------


def resume(
    ctx: RunContext,
    req: Rotation,
    console: Console,
    *,
    known: tuple[DlzCredentials, RotationFacts] | None = None,
    finished: str = "rotation finished",
) -> Rotated:
    """GET the current (already refreshed) token and converge on it; never refresh. `known`: the
    credentials and facts `rotate` read already (each fact once). `finished` names what ran, for
    the closing line: a resume, or putting live a token AEP issued on its own (after expiry, or
    a refresh outside the tool)."""
    env, mode = req.env, mode_of(req.env)
    journal = journal_of(ctx, env)
    unfinished = journal.unfinished()
    creds, facts = known if known is not None else (fetch_credentials(ctx, env), read_facts(ctx, env, console))
    if unfinished is not None:
        facts = _keep_what_it_wrote(ctx, env, creds, facts, unfinished, console)
    cluster_ids = mode.resume(
        ctx,
        env,
        creds,
        facts,
        console,
        plan_file=default_plan_file(env),
        ask=lambda: confirm(ctx, req.auto_approve, f"Apply this plan to environment '{env.name}'?"),
        render=lambda: render_env(ctx, env, creds),
    )
    if cluster_ids is None:
        return Rotated(ExitCode.ERROR)
    report = _converge(
        ctx,
        env,
        console,
        cluster_ids,
        req,
        None if unfinished is None else unfinished.seen_starts,
        f"run `{req.resume_command}` again",
    )
    if unfinished is not None:
        journal.finish(expiry_date=creds.expiry_date.isoformat())
    console.ok(f"{env.name}: {finished} — {describe(report)}; token expires {creds.expiry_date.isoformat()}")
    since = _since(unfinished)
    if since is not None:
        console.line(f"revocation window: {since:.2f}s (refresh answered → running clusters on the new token)")
    mode.reconcile(ctx, env, console)
    return Rotated(ExitCode.OK, cluster_ids)  # as in _rotate: the refresh changes no id


def _keep_what_it_wrote(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    facts: RotationFacts,
    entry: JournalEntry,
    console: Console,
) -> RotationFacts:
    """A run killed between its `secrets/put` and its fingerprint leaves a value that reads as
    "rewritten outside the tool", which the mode's resume would write again — making every
    cluster that run already restarted on it stale, restarted a second time. When the journal
    says that run wrote the token AEP holds now (same fingerprint, the value no newer than the
    journal's entry), only the fingerprint is added and the value kept. The facts as they then stand."""
    if facts.listed is None:
        return facts  # no secret to keep (inline mode)
    fresh = secret_value.judge_freshness(facts.listed, env, creds)
    written = entry.at("secret_written")
    if not (entry.reached("secret_written") and fresh.rewritten_outside and written and fresh.updated_ms):
        return facts
    if entry.fingerprint != secret_value.fingerprint(creds.sas_token):
        return facts
    # The journal's time is taken after the put answered; the two clocks may differ a little.
    if fresh.updated_ms > (written.timestamp() + _CLOCK_SKEW_SECONDS) * 1000:
        return facts
    client = ctx.workspace_client(env)
    secret_value.record_fingerprint(client, env, creds, listed=facts.listed)
    console.info(
        f"{env.name}: secret {fresh.scope}/{fresh.key} already holds AEP's current token (written by the "
        f"interrupted rotation at {fresh.last_updated}); kept"
    )
    return dataclasses.replace(facts, listed=secret_value.list_scope(client, env))


_CLOCK_SKEW_SECONDS = 120

# ---- reporting ---------------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _since(entry: JournalEntry | None) -> float | None:
    """Wall-clock seconds since the recorded refresh (monotonic time does not survive a process)."""
    stamp = None if entry is None else entry.doc.get("refreshed_at")
    if not isinstance(stamp, str):
        return None
    try:
        return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return None


def describe(report: ConvergeReport) -> str:
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
