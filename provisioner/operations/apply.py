"""`provision apply`'s work: apply a saved plan as-is (local use), or plan then apply what was
shown — with a reviewed summary, only if it is the change set a reviewer approved
(provisioner.review.plan_review), so no plan file (which holds the token) travels between CI jobs.

After Terraform: AEP's base connection follows a re-created cluster (provisioner.operations.connect),
running clusters are brought onto the current token (provisioner.databricks.converge).

secret_scope mode: the tool writes the SAS secret itself (provisioner.sas.secret_step) — after
the question and before Terraform applies, so what the apply starts finds the current token.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.databricks.converge import converge_clusters
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.errors import ExitCode, ProvisionError
from provisioner.operations.connect import repoint_after_apply
from provisioner.operations.recover import importing_strays
from provisioner.operations.rotate.journal import journal_of
from provisioner.review.plan_summary import summary_of
from provisioner.run.approval import confirm, require_approval_possible
from provisioner.run.context import (
    RunContext,
    check_access_modes,
    check_pins,
    check_workspace_access,
    default_plan_file,
    fetch_credentials,
    identify,
    init_env,
    render_env,
)
from provisioner.sas import secret_step
from provisioner.sas.expiry import plan_token_honoured
from provisioner.sas.modes import mode_of
from provisioner.terraform import (
    Applied,
    InitOptions,
    PlanOptions,
    TerraformRunner,
    TerraformState,
    apply_saved,
    read_state,
    saved_plan,
)
from provisioner.terraform.planfile import per_process_plan, planned_on

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.review.plan_review import ReviewedPlan


@dataclass(frozen=True)
class SavedPlan:
    path: Path  # resolved
    shown: str  # as the user named it, for messages


@dataclass(frozen=True)
class ApplyRequest:
    auto_approve: bool
    timeout: float  # for clusters to come back RUNNING after a restart
    saved: SavedPlan | None = None  # apply this plan as-is; else plan, confirm, apply
    reviewed: ReviewedPlan | None = None  # only a fresh plan with this change set is applied
    init: InitOptions | None = None
    lock_timeout: str = "0s"
    warm_dlz: bool = False  # a DLZ check follows: let the DLZ get ready while Terraform works


@dataclass(frozen=True)
class ApplyResult:
    applied: Applied
    # The root's state once the apply is done (DECLINED: as read before it). What follows the
    # apply (the closing probe) reads the clusters here, not the state again (issue 24).
    state: TerraformState


def apply_environment(ctx: RunContext, env: Environment, console: Console, req: ApplyRequest) -> ApplyResult:
    """Apply one environment (see the module docstring). DECLINED: nothing changed.

    The state is read once before the work and, only when the apply changed it, once after.
    """
    require_approval_possible(ctx, req.auto_approve, "apply")
    started = time.time()  # compared with a plan file's mtime: the filesystem's clock, not the run's
    identify(ctx, env)  # before any AEP call or change: who this run is, and that it authenticates
    check_access_modes(ctx, env)  # which clusters will not work for this run, before anything changes
    if req.warm_dlz:
        ctx.warm_dlz()
    scoped = mode_of(env).tool_writes_secret
    planned: TerraformState | None = None  # the state a plan that changed nothing was made on
    if req.saved is not None:
        # A saved plan carries the token it was made with (inline mode); secret_scope mode
        # writes the secret itself, from AEP's current token.
        creds = fetch_credentials(ctx, env) if scoped else None
        runner = ctx.runner(env, sas=None)
        runner.init(req.init)
        state = read_state(runner, init=False)
        if not scoped:  # in secret_scope mode the plan holds no token: the tool writes AEP's current one
            _refuse_revoked_plan(ctx, env, runner.show_json(req.saved.path), req.saved.shown)
        _preflight(ctx, env, state)
        asked = _asker(ctx, env, console, req, runner, req.saved.path, creds)
        applied = apply_saved(runner, req.saved.path, asked, req.lock_timeout)
    else:
        creds = fetch_credentials(ctx, env)
        render_env(ctx, env, creds)
        check_pins(ctx, env)
        runner = ctx.runner(env, creds.sas_token)
        init_env(ctx, env, runner, init=req.init)
        state = read_state(runner, init=False)
        _preflight(ctx, env, state)
        # Per process: a second apply of the same root must not overwrite or delete our plan.
        plan_file = per_process_plan(default_plan_file(env).parent)
        plan = PlanOptions(out=plan_file, lock_timeout=req.lock_timeout)
        asked = _asker(ctx, env, console, req, runner, plan_file, creds)
        # A killed apply's creates: imported, not made twice.
        with importing_strays(ctx, env, state.clusters(), console):
            applied, planned = _plan_and_apply(ctx, env, creds, runner, plan, req.reviewed, asked)
    if applied is Applied.DECLINED:
        return ApplyResult(applied, state)
    if req.saved is None:
        _remove_superseded_plan(env, started)
    # Nothing applied, nothing written: the state the plan was made on (or, for a saved plan,
    # the one read above; the environment's lock keeps other applies out) stands.
    after = planned if planned is not None else state
    if applied is Applied.APPLIED:
        # Read again, justified: the apply wrote the state — a cluster it created or re-created
        # has an id only the new state knows (the repoint, converge and the probe need it).
        after = read_state(runner, init=False)
    if scoped and creds is not None:
        if applied is Applied.NO_CHANGES:
            found = secret_step.check(ctx, env, creds, after)
            secret_step.report(env, found, console)
            secret_step.before_apply(ctx, env, creds, runner, None, found, console)
        else:
            secret_step.after_apply(env, console, default_plan_file(env))
    # A re-created cluster has a new id: AEP's base connection must follow it.
    repoint_after_apply(ctx, env, state.clusters(), after.clusters(), console)
    _converge(ctx, env, console, req.timeout, after.clusters(), fresh_credentials=req.saved is None or scoped)
    return ApplyResult(applied, after)


def _plan_and_apply(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    runner: TerraformRunner,
    plan: PlanOptions,
    reviewed: ReviewedPlan | None,
    ask: Callable[[], bool],
) -> tuple[Applied, TerraformState | None]:
    """plan -out → (with `reviewed`: its change set must be the reviewed one) → apply it, or stop
    (plan removed). With no changes, also the state the plan was made on (read from the plan
    file, no Terraform process): what the steps after take instead of reading the state again."""
    with saved_plan(runner, plan) as outcome:
        if reviewed is not None:
            reviewed.require_match(summary_of(ctx, env, creds, plan.out, ctx.console).change_set)
            ctx.console.ok(f"{env.name}: the fresh plan matches the reviewed change set ({reviewed.digest[:19]}…)")
        if outcome is ExitCode.NO_CHANGES:
            return Applied.NO_CHANGES, planned_on(plan.out)
        return apply_saved(runner, plan.out, ask, plan.lock_timeout), None


def _asker(
    ctx: RunContext,
    env: Environment,
    console: Console,
    req: ApplyRequest,
    runner: TerraformRunner,
    plan_file: Path,
    creds: DlzCredentials | None,
) -> Callable[[], bool]:
    """The question before the apply, with what secret_scope mode checks first and writes after a yes."""
    scoped = mode_of(env).tool_writes_secret

    def asked() -> bool:
        planned = planned_on(plan_file)
        if scoped:  # before anything changes: can every cluster's owner read the secret?
            check_owners_can_read(
                ctx.workspace_client(env), env, planned.clusters(), console.warn, functools.partial(ctx.identity, env)
            )
        found = secret_step.check(ctx, env, creds, planned) if scoped and creds else None
        if found is not None:
            secret_step.report(env, found, console)
        if not confirm(ctx, req.auto_approve, f"Apply this plan to environment '{env.name}'?"):
            return False
        if found is not None and creds is not None:
            # May re-plan into plan_file (first apply: the scope alone first, then the rest).
            secret_step.before_apply(ctx, env, creds, runner, plan_file, found, console, req.lock_timeout)
        return True

    return asked


def _remove_superseded_plan(env: Environment, started: float) -> None:
    """`provision plan`'s saved plan, made before this apply planned afresh, is stale now (Terraform
    would refuse it) and holds the token in inline mode: it goes. One a concurrent `plan` wrote
    since this apply started is that run's."""
    path = default_plan_file(env)
    try:
        if path.stat().st_mtime < started:
            path.unlink()
    except FileNotFoundError:
        pass


def _preflight(ctx: RunContext, env: Environment, state: TerraformState) -> None:
    """After the apply, converge restarts clusters: a missing right must fail before anything changes."""
    check_workspace_access(ctx, env, state.clusters())


def _refuse_revoked_plan(ctx: RunContext, env: Environment, plan: dict[str, object], shown: str) -> None:
    """A saved plan made with a token AEP has since replaced would put a dead token live."""
    if plan_token_honoured(plan, fetch_credentials(ctx, env)) is False:
        raise ProvisionError(
            f"{shown}: this plan was made with a SAS token AEP no longer honours (AEP issued a new one since: "
            f"it expired or was refreshed) — make a new plan: `provision plan --env {env.name} --out {shown}`"
        )


def _converge(
    ctx: RunContext,
    env: Environment,
    console: Console,
    timeout: float,
    cluster_ids: dict[str, str],
    *,
    fresh_credentials: bool,
) -> None:
    """Make running clusters actually use the current token (see provisioner.databricks.converge).

    Applied with the token AEP hands out now, this also finishes a rotation that failed
    after its refresh; a saved plan may predate that refresh, so it leaves the journal unfinished.
    """
    if cluster_ids:
        converge_clusters(
            ctx.workspace_client(env),
            cluster_ids,
            console,
            secret=env.sas.secret,
            timeout=timeout,
            max_parallel=env.databricks_max_parallel,
            clock=ctx.clock,
        )
    if fresh_credentials:
        journal = journal_of(ctx, env)
        if journal.unfinished() is not None:
            journal.finish()
            console.info(f"{env.name}: this apply finished the interrupted rotation (every cluster on AEP's token)")
