"""`provision plan`'s work: credentials → render → init (when needed) → plan -out, per environment.

With several environments the plans run in parallel (`jobs`), each one's output is buffered
and printed as one section when it finishes (or streamed with an `[env]` prefix on every line
with `stream`); the caller prints the combined summary. In secret_scope mode the plan also
checks the scope and says whether apply will write the secret (provisioner.secret_apply).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config import Environment
from provisioner.console import BufferedConsole, Console
from provisioner.env_results import EnvResult
from provisioner.errors import ExitCode, ProvisionError
from provisioner.plan_ahead import plan_ahead
from provisioner.terraform import PlanOptions
from provisioner.terraform.planfile import planned_on
from provisioner.terraform.process import Cancelled
from provisioner.workflow import (
    RunContext,
    check_pins,
    default_plan_file,
    fetch_credentials_aside,
    plan_env,
    render_env,
)

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.expiry import TokenReplaced
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
    started = time.monotonic()
    plan_file = req.out.resolve() if req.out else default_plan_file(env)
    ctx = dataclasses.replace(ctx, console=console)
    try:
        outcome = _plan(ctx, env, console, req, plan_file)
        return EnvResult(env.name, outcome, time.monotonic() - started)
    except Cancelled:
        raise
    except ProvisionError as exc:
        if req.summary:
            from provisioner.plan_summary import write_failed_summary

            # The review must name the failure, not miss the environment.
            write_failed_summary(env.name, str(exc).replace(f" in {env.root_dir}", ""), req.summary)
        if raise_errors:
            raise
        console.error(str(exc))
        return EnvResult(env.name, ExitCode.ERROR, time.monotonic() - started, _short(exc, env))


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
    # plans the root on disk (provisioner.plan_ahead). Terraform gets the same identity, its
    # auth type pinned.
    fetched = fetch_credentials_aside(ctx, env)
    with plan_ahead(ctx, env, PlanOptions(out=plan_file, lock_timeout=req.lock_timeout), req.init) as ahead:
        ctx.identity(env)
        check_pins(ctx, env)
        creds = fetched()
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
    secret_write = False
    holds_current: bool | None = None
    if env.sas.mode == "secret_scope":
        # The value is not Terraform's: check the scope and say whether apply will write it.
        from provisioner import secret_apply
        from provisioner.databricks.ownership import check_owners_can_read

        planned, client, identity = planned_on(plan_file), ctx.workspace_client(env), ctx.identity(env)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="owners") as side:
            # Two independent chains of workspace reads: side by side, not one after the other.
            owners = side.submit(check_owners_can_read, client, env, planned.clusters(), console.warn, identity)
            found = secret_apply.check(ctx, env, creds, planned)
            owners.result()
        secret_apply.report(env, found, console)
        secret_write = found.needs_write
        if secret_write:
            outcome = ExitCode.CHANGES  # apply has something to do
        if found.freshness is not None and found.freshness.present:
            holds_current = found.freshness.holds_current
    replaced = _token_replaced(env, creds, plan_file, holds_current)
    if replaced is not None:
        console.warn(
            f"{env.name}: ROTATION NEEDED — {replaced.reason()}; applying this plan "
            "(or `provision rotate`) puts AEP's current token live"
        )
    if req.summary:
        from provisioner.plan_summary import write_summary

        reason = None if replaced is None else replaced.reason()
        write_summary(
            ctx, env, creds, plan_file, req.summary, console, secret_write=secret_write, rotation_needed=reason
        )
    if outcome is ExitCode.CHANGES:
        console.info(f"{env.name}: changes planned; saved plan {plan_file}")
    else:
        console.ok(f"{env.name}: no changes")
    return outcome


def _token_replaced(
    env: Environment, creds: DlzCredentials, plan_file: Path, secret_holds_current: bool | None
) -> TokenReplaced | None:
    """Compared against the state the plan was made on (read from the plan file: no extra
    terraform run) and, in secret_scope mode, what the workspace says about the secret."""
    from provisioner.expiry import token_replaced

    return token_replaced(planned_on(plan_file), env, creds, secret_holds_current=secret_holds_current)


def _short(exc: ProvisionError, env: Environment) -> str:
    """The what of an error, for its summary row: the row already names the environment."""
    return str(exc).split(" — ")[0].replace(f" in {env.root_dir}", "").replace(f" {env.root_dir}", "")[:200]


def _warm_up(ctx: RunContext) -> None:
    """Do once, before the threads start, what every environment would otherwise race to do."""
    ctx.terraform_binary()
    ctx.target.terraform_env()  # e.g. builds the sandbox's provider mirror, shared by all roots
