"""`provision plan`'s work: credentials → render → init (when needed) → plan -out, per environment.

With several environments the plans run in parallel (`jobs`), each one's output is buffered
and printed as one section when it finishes (or streamed with an `[env]` prefix on every line
with `stream`); the caller prints the combined summary. In secret_scope mode the plan also
checks the scope and says whether apply will write the secret (provisioner.sas.secret_step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config.model import Environment
from provisioner.console import BufferedConsole, Console
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.errors import ExitCode, ProvisionError
from provisioner.operations.plan_ahead import plan_ahead
from provisioner.operations.recover import importing_strays
from provisioner.review.env_results import EnvResult
from provisioner.review.plan_summary import write_failed_summary, write_summary
from provisioner.run.context import (
    RunContext,
    check_access_modes,
    check_pins,
    default_plan_file,
    fetch_credentials_aside,
    plan_env,
    read_env_state,
    render_env,
)
from provisioner.run.warmup import in_thread
from provisioner.sas import secret_step
from provisioner.sas.modes import mode_of
from provisioner.sas.secret_step import ScopeReading
from provisioner.terraform import PlanOptions, TerraformState
from provisioner.terraform.planfile import planned_on
from provisioner.terraform.process import Cancelled

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.terraform import InitOptions

_section_lock = threading.Lock()
# Terraform documents its plugin cache as unsafe for concurrent installs: inits that may
# install providers into a shared TF_PLUGIN_CACHE_DIR run one at a time (plans stay parallel).
_plugin_cache_lock = threading.Lock()


@dataclass(frozen=True)
class PlanRequest:
    """How to plan: the same for every environment of a run."""

    out: Path | None = None  # the saved plan's path (one environment); else the root's default
    summary: Path | None = None  # write the review summary here (one environment)
    init: InitOptions | None = None
    lock_timeout: str = "0s"


def plan_environment(
    ctx: RunContext, env: Environment, console: Console, req: PlanRequest, *, raise_errors: bool = False
) -> EnvResult:
    """Plan one environment, every line of it to `console`. A failure is a result (its summary,
    if asked for, names it) unless `raise_errors`."""
    started = ctx.clock.monotonic()
    plan_file = req.out.resolve() if req.out else default_plan_file(env)
    ctx = dataclasses.replace(ctx, console=console)
    try:
        outcome = _plan(ctx, env, console, req, plan_file)
        return EnvResult(env.name, outcome, ctx.clock.monotonic() - started)
    except Cancelled:
        raise
    except ProvisionError as exc:
        if req.summary:
            # The review must name the failure, not miss the environment.
            write_failed_summary(env.name, str(exc).replace(f" in {env.root_dir}", ""), req.summary)
        if raise_errors:
            raise
        console.error(str(exc))
        return EnvResult(env.name, ExitCode.ERROR, ctx.clock.monotonic() - started, _short(exc, env))


def plan_environments(
    ctx: RunContext, envs: list[Environment], console: Console, req: PlanRequest, *, jobs: int, stream: bool
) -> list[EnvResult]:
    """Plan each environment, `jobs` at a time: one section per environment in completion order
    (or, with `stream`, every line as it comes with an `[env]` prefix)."""
    _warm_up(ctx)

    def work(env: Environment) -> EnvResult:
        if stream:
            return plan_environment(ctx, env, console.prefixed(f"[{env.name}] "), req)
        buffer = BufferedConsole(color=console.color)
        try:
            return plan_environment(ctx, env, buffer, req)
        finally:
            with _section_lock:
                console.line(console.paint(f"── {env.name} " + "─" * 40, "bold"))
                buffer.flush_to(console)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="plan") as pool:
        return list(pool.map(work, envs))


def _plan(ctx: RunContext, env: Environment, console: Console, req: PlanRequest, plan_file: Path) -> ExitCode:
    # AEP answers while the identity is proven (a GET refreshes only an expired token, whose
    # copy on the clusters no longer works anyway) and, in secret_scope mode, while Terraform
    # plans the root on disk (provisioner.operations.plan_ahead). Terraform gets the same identity, its
    # auth type pinned.
    from provisioner.operations.recover import remove_abandoned_recovery

    if remove_abandoned_recovery(env.root_dir):  # before Terraform reads the root
        console.info(f"{env.name}: removed recovered.tf, left by an apply that was killed")
    mode = mode_of(env)
    scoped = mode.tool_writes_secret
    notes = BufferedConsole(color=console.color)  # the checks' warnings, printed after the plan
    state: Callable[[], TerraformState] | None = None
    early: Callable[[], ScopeReading] | None = None
    with plan_ahead(ctx, env, PlanOptions(out=plan_file, lock_timeout=req.lock_timeout), req.init) as ahead:
        fetched = fetch_credentials_aside(ctx, env)  # after Terraform's start: it imports requests
        # The scope and owners' reads need the state, not the plan, nor AEP's token: with a
        # plan under way they run beside it and AEP, on the state as it is, and are kept if
        # the plan's prior state gives them the same inputs.
        if scoped and ahead.running:
            state = in_thread(lambda: _state_now(ctx, env), "state")
            read = state
            early = in_thread(lambda: _read_scope(ctx, env, read(), notes), "scope-read")
        try:
            ctx.identity(env)
            check_pins(ctx, env)
            check_access_modes(ctx, env)
            creds = fetched()
        except BaseException:
            for pending in (early, state):
                if pending is not None:
                    with contextlib.suppress(BaseException):
                        pending()  # its terraform process and calls end before we do
            raise
        outcome = ahead.outcome_for(render_env(ctx, env, creds), console)
        if outcome is None:
            outcome = plan_env(
                ctx,
                env,
                creds,
                plan_file,
                console,
                init=req.init,
                lock_timeout=req.lock_timeout,
                init_lock=_plugin_cache_lock if ctx.target.shares_plugin_cache() else None,
            )
    outcome = _import_strays(ctx, env, console, req, plan_file, creds, outcome)
    secret_write = False
    listed: Mapping[str, int] | None = None
    planned = planned_on(plan_file)  # the state the plan was made on: no extra terraform run
    if scoped:
        # The value is not Terraform's: check the scope and say whether apply will write it.
        try:
            same = early is not None and state is not None and _check_inputs(state()) == _check_inputs(planned)
        except ProvisionError:
            same = False  # the state could not be read beside the plan: check on the plan's own
        if same and early is not None:
            reading = early()  # an error it met, the plan's state would meet again
        else:
            notes = BufferedConsole(color=console.color)
            reading = _read_scope(ctx, env, planned, notes)
        found = secret_step.judge(env, reading, creds, planned)
        notes.flush_to(console)
        secret_step.report(env, found, console)
        secret_write = found.needs_write
        if secret_write:
            outcome = ExitCode.CHANGES  # apply has something to do
        listed = reading.listed
    replaced = mode.token_replaced(planned, env, creds, listed)
    if replaced is not None:
        console.warn(
            f"{env.name}: ROTATION NEEDED — {replaced.reason()}; applying this plan "
            "(or `provision rotate`) puts AEP's current token live"
        )
    if req.summary:
        reason = None if replaced is None else replaced.reason()
        write_summary(
            ctx, env, creds, plan_file, req.summary, console, secret_write=secret_write, rotation_needed=reason
        )
    if outcome is ExitCode.CHANGES:
        console.info(f"{env.name}: changes planned; saved plan {plan_file}")
    else:
        console.ok(f"{env.name}: no changes")
    return outcome


def _import_strays(
    ctx: RunContext,
    env: Environment,
    console: Console,
    req: PlanRequest,
    plan_file: Path,
    creds: DlzCredentials,
    outcome: ExitCode,
) -> ExitCode:
    """When the plan creates a configured cluster, look for the one a killed apply made and the
    state never recorded (provisioner.operations.recover): plan again, importing it, so what is
    reviewed is what `apply` will do. The common plan, every cluster in state, lists nothing."""

    prior = planned_on(plan_file).clusters()
    if not any(c.import_id is None and c.name not in prior for c in env.clusters):
        return outcome
    with importing_strays(ctx, env, prior, console) as chosen:
        if not chosen:
            return outcome
        return plan_env(
            ctx,
            env,
            creds,
            plan_file,
            console,
            init=req.init,
            lock_timeout=req.lock_timeout,
            init_lock=_plugin_cache_lock if ctx.target.shares_plugin_cache() else None,
        )


def _state_now(ctx: RunContext, env: Environment) -> TerraformState:
    """The root's state for checks that a plan's prior state confirms (a local backend's file
    as it is, no Terraform process beside the plan's), its lines dropped (a state it cannot
    read, the plan cannot either, and says so)."""
    return read_env_state(ctx, env, init=False, console=BufferedConsole())


def _check_inputs(state: TerraformState) -> tuple[object, ...]:
    """What `_read_scope` reads from the state: for equal inputs it finds the same."""
    return (tuple(sorted(state.clusters().items())), *secret_step.state_inputs(state))


def _read_scope(ctx: RunContext, env: Environment, state: TerraformState, notes: Console) -> ScopeReading:
    """The secret scope (provisioner.sas.secret_step) and the clusters' owners (may they read it?).

    Reads only: they start beside the identity's proof (SCIM Me, a round trip), which the
    owners' check waits for after its own reads, and a refused login is reported by the proof."""
    client = ctx.reading_client(env)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="owners") as side:
        # Two independent chains of workspace reads: side by side, not one after the other.
        who = functools.partial(ctx.identity, env)
        owners = side.submit(check_owners_can_read, client, env, state.clusters(), notes.warn, who)
        reading = secret_step.read_scope(client, env, state)
        owners.result()
    return reading


def _short(exc: ProvisionError, env: Environment) -> str:
    """The what of an error, for its summary row: the row already names the environment."""
    return str(exc).split(" — ")[0].replace(f" in {env.root_dir}", "").replace(f" {env.root_dir}", "")[:200]


def _warm_up(ctx: RunContext) -> None:
    """Do once, before the threads start, what every environment would otherwise race to do."""
    ctx.terraform_binary()
    ctx.target.terraform_env()  # e.g. builds the sandbox's provider mirror, shared by all roots
