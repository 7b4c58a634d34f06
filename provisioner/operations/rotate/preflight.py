"""A rotation's pre-flight: everything that can fail is tried before AEP revokes the token.

secret_scope mode: render, read the state, check the scope (exists, Databricks-backed, READ),
then every managed cluster — readable, the identity may restart it, its owner can resolve the
secret — and which are running (the window restarts those). inline mode: a plan with the
current token first (provider, backend, pending changes besides the token). What it finds is
`Prepared`; the window itself is provisioner.operations.rotate.rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.console import Console
from provisioner.databricks.cluster_reads import read_clusters
from provisioner.databricks.cluster_state import cluster_gone, last_start_ms
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.databricks.workspace import WorkspaceError, said
from provisioner.errors import ExitCode, ProvisionError
from provisioner.run.context import RunContext, check_workspace_access, default_plan_file, render_env
from provisioner.sas import scope_secret
from provisioner.terraform import PlanOptions, read_state, saved_plan

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config.model import Environment


@dataclass(frozen=True)
class Rotation:
    """One rotation request: which environment, how to ask, how to finish if it fails."""

    env: Environment
    auto_approve: bool
    timeout: float
    resume_command: str  # printed whenever the old token is gone and something failed


@dataclass(frozen=True)
class Prepared:
    cluster_ids: dict[str, str]  # resource name -> cluster id
    seen_starts: dict[str, int]  # running clusters -> their last start (ms), before the refresh
    # The running clusters as read then: in secret_scope mode nothing changes them before the
    # restarts, so the window restarts them without reading each again (converge `known`).
    seen_running: dict[str, dict[str, Any]] = field(default_factory=dict)


def prepare_scoped(ctx: RunContext, env: Environment, creds: DlzCredentials, console: Console) -> Prepared:
    render_env(ctx, env, creds)
    runner = ctx.runner(env, None, console)
    state = read_state(runner)
    if scope_secret.legacy_secret_in_state(state):
        raise ProvisionError(
            f"{env.name}: the Terraform state still holds the SAS token ({scope_secret.LEGACY_SECRET_ADDRESS}, "
            "the layout before the tool wrote the secret itself) — run `provision apply` once to move it "
            "(the live secret is kept, no gap), then rotate"
        )
    client = ctx.workspace_client(env)
    scope_secret.check_scope(client, env, state, must_exist=True)
    scope_secret.read_freshness(client, env, creds)  # READ on the scope
    return _clusters(ctx, env, state.clusters(), console)


def prepare_inline(
    ctx: RunContext, env: Environment, creds: DlzCredentials, console: Console, req: Rotation
) -> Prepared:
    render_env(ctx, env, creds)
    runner = ctx.runner(env, creds.sas_token, console)
    runner.init()
    plan_file = default_plan_file(env)
    console.info(f"{env.name}: pre-flight plan with the current token")
    others: list[str] = []
    with saved_plan(runner, PlanOptions(out=plan_file)) as outcome:  # it holds the token about to be revoked
        if outcome is ExitCode.CHANGES:
            others = _changes_besides_token(runner.show_json(plan_file), env, creds)
    if others:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        if req.auto_approve:
            raise ProvisionError(
                f"{env.name}: pending changes besides the SAS token ({listed}) — review and apply them first "
                "(`provision plan`, `provision apply`), then rotate; a rotation never applies unreviewed changes"
            )
        console.warn(f"{env.name}: pending changes besides the token ({listed}) are applied with the new token")
    return _clusters(ctx, env, read_state(runner, init=False).clusters(), console)


def _clusters(ctx: RunContext, env: Environment, cluster_ids: dict[str, str], console: Console) -> Prepared:
    # The identity restarts clusters right after the refresh: fail now if it may not.
    check_workspace_access(ctx, env, cluster_ids)
    reads = read_clusters(ctx.workspace_client(env), env, cluster_ids)
    running: dict[str, dict[str, Any]] = {}
    for name, cid in sorted(cluster_ids.items()):
        info = reads.clusters[cid]
        if isinstance(info, WorkspaceError):
            if not cluster_gone(info):
                raise ProvisionError(f"{env.name}: cannot read cluster {name} ({cid}): {said(info)}")
            # Deleted, or purged 30 days after an unpinned termination (provisioner/databricks/pinning.py).
            console.warn(f"{env.name}: cluster {name} ({cid}) no longer exists — `provision apply` re-creates it")
            cluster_ids = {n: c for n, c in cluster_ids.items() if n != name}
        elif info.get("state") == "RUNNING":
            running[name] = info
    # The restarts after the refresh resolve the secret as each cluster's owner (secret_scope mode).
    known = {cid: info for cid, info in reads.clusters.items() if not isinstance(info, WorkspaceError)}
    check_owners_can_read(ctx.workspace_client(env), env, cluster_ids, console.warn, ctx.identity(env), known)
    console.info(f"{env.name}: ready — {len(cluster_ids)} managed cluster(s), {len(running)} running")
    return Prepared(cluster_ids, {name: last_start_ms(info) for name, info in running.items()}, running)


def _changes_besides_token(plan: dict[str, Any], env: Environment, creds: DlzCredentials) -> list[str]:
    """Addresses the inline pre-flight plan changes for another reason than the SAS token."""
    from provisioner.review.plan_summary import summarize

    out = []
    for res in summarize(plan, env, creds).resources:
        if res.action == "no-op":
            continue
        token_only = res.type == "databricks_cluster" and res.action == "update"
        if not (token_only and res.changed == [f"spark_conf[{creds.spark_conf_key}]"]):
            out.append(f"{res.address} {res.action}")
    return out
