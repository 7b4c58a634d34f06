"""`provision destroy`'s work: plan -destroy → confirm → apply — clusters are permanently deleted.

A secret scope this environment manages is kept (`prevent_destroy`: the live token is in it,
and Terraform would refuse the whole destroy): everything else is destroyed by target.

An adopted cluster — one that existed before the tool (`provision adopt`: its provision.yaml
entry has `import_id`, and the state's cluster is that one) — is kept too unless asked
(`include_adopted`): it is left out of the targets, then forgotten (`terraform state rm`), so it
keeps running as it did before adoption. Terraform's own way, a `removed` block with
`destroy = false`, is ignored by `plan -destroy` (Terraform 1.11 plans it destroyed like the
rest), and a non-destroy plan of a root without the cluster blocks would also drop the
scope's `prevent_destroy`. Clusters an interrupted apply created and the state never recorded
(provisioner.operations.recover) are named: no state means Terraform cannot delete them.

Once the clusters are gone, the Databricks token of each of their AEP base connections is
revoked (it could only serve a cluster that no longer exists); the connections themselves
stay in AEP, which owns them and their dataflows, and are named so a person can delete them.
A kept adopted cluster keeps its connection and token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provisioner.config.model import Environment
from provisioner.databricks import tokens
from provisioner.databricks.cluster_tags import Stray
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError
from provisioner.operations.recover import stray_clusters
from provisioner.run.approval import confirm, require_approval_possible
from provisioner.run.context import RunContext, default_plan_file, fetch_credentials, render_env
from provisioner.sas.modes import mode_of
from provisioner.sas.secret_value import SCOPE_ADDRESS
from provisioner.terraform import Applied, PlanOptions, TerraformRunner, TerraformState, plan_and_apply, read_state

CLUSTER_TYPE = "databricks_cluster"


@dataclass(frozen=True)
class Destroyed:
    applied: Applied  # NO_CHANGES: nothing to destroy; DECLINED: nothing changed
    kept_scope: bool  # the managed secret scope was left in place
    kept_adopted: tuple[tuple[str, str], ...] = ()  # (name, cluster id): forgotten, not deleted
    strays: tuple[Stray, ...] = ()  # tagged for the environment, unknown to its state: not deleted
    left_in_aep: tuple[str, ...] = ()  # one line per AEP base connection of a destroyed cluster


def adopted_in_state(env: Environment, state: TerraformState) -> dict[str, str]:
    """name -> cluster id of each managed cluster that is the very cluster its entry adopted."""
    ids = state.clusters()
    return {c.name: ids[c.name] for c in env.clusters if c.import_id is not None and ids.get(c.name) == c.import_id}


def destroy_environment(
    ctx: RunContext, env: Environment, auto_approve: bool, *, include_adopted: bool = False
) -> Destroyed:
    require_approval_possible(ctx, auto_approve, "destroy")
    creds = fetch_credentials(ctx, env)
    render_env(ctx, env, creds)
    runner = ctx.runner(env, creds.sas_token)
    runner.init()
    state = read_state(runner, init=False)
    strays = tuple(stray_clusters(ctx, env, state.clusters()))
    kept_scope = mode_of(env).kept_on_destroy(env)
    adopted = {} if include_adopted else adopted_in_state(env, state)
    kept = tuple(sorted(adopted.items()))
    excluded = {f"{CLUSTER_TYPE}.{name}" for name in adopted} | ({SCOPE_ADDRESS} if kept_scope else set())
    targets: tuple[str, ...] = ()
    if excluded:
        targets = tuple(sorted(a for a in state.addresses() if a not in excluded))
        if not targets:
            _forget(runner, adopted)
            return Destroyed(Applied.NO_CHANGES, kept_scope, kept, strays)
    for name, cluster_id in kept:
        ctx.console.info(
            f"{env.name}: clusters.{name} ({cluster_id}) existed before dlz-provisioner (adopted): it is kept — "
            "forgotten, not deleted (`provision destroy --include-adopted` deletes it too)"
        )
    # What is kept: the question must not promise more than the targeted destroy does.
    spared = ([f"secret scope {env.sas.secret_scope}"] if kept_scope else []) + [f"clusters.{n}" for n, _ in kept]
    but = f" but {', '.join(spared)}, which {'is' if len(spared) == 1 else 'are'} kept" if spared else ""
    applied = plan_and_apply(
        runner,
        PlanOptions(out=default_plan_file(env), destroy=True, targets=targets),
        lambda: confirm(ctx, auto_approve, f"Destroy everything environment '{env.name}' manages{but}?"),
    )
    if applied is not Applied.DECLINED:
        _forget(runner, adopted)
    left: tuple[str, ...] = ()
    if applied is Applied.APPLIED:
        gone = {name: cid for name, cid in state.clusters().items() if name not in adopted}
        left = tuple(revoke_connection_tokens(ctx, env, gone))
    return Destroyed(applied, kept_scope, kept if applied is not Applied.DECLINED else (), strays, left)


def _forget(runner: TerraformRunner, adopted: dict[str, str]) -> None:
    if adopted:
        runner.state_rm([f"{CLUSTER_TYPE}.{name}" for name in sorted(adopted)])


def revoke_connection_tokens(ctx: RunContext, env: Environment, clusters: Mapping[str, str]) -> list[str]:
    """Revoke the recorded token of each destroyed cluster's AEP connection; what is left in AEP."""
    from provisioner.aep.flowservice import FlowServiceClient, norm_domain
    from provisioner.operations.connection_token import TokenRecord

    by_id = {cid: name for name, cid in clusters.items()}
    if not by_id:
        return []
    want = norm_domain(env.databricks_host)
    lines = []
    try:
        connections = list(FlowServiceClient(ctx.aep_client(env)).connections())
    except ProvisionError as exc:
        return [f"AEP connections could not be listed ({exc}): their Databricks tokens were not revoked"]
    for item in connections:
        params = (item.get("auth") or {}).get("params") or {}
        name = by_id.get(str(params.get("clusterId", "")))
        if name is None or norm_domain(str(params.get("domain", ""))) != want:
            continue
        record = TokenRecord.of(item)
        if record is None:
            token = "its token was not minted by the tool and is not revoked"
        else:
            try:
                gone = tokens.delete(ctx.workspace_client(env), record.token_id)
                token = f"its token {record.token_id} {'is revoked' if gone else 'was already gone'}"
            except WorkspaceError as exc:
                token = f"its token {record.token_id} could NOT be revoked ({exc.message}) — revoke it in the workspace"
        lines.append(
            f"left AEP base connection {item.get('id')} ('{item.get('name')}') in AEP: it points at deleted "
            f"cluster {name} ({params.get('clusterId')}) and {token}; delete it (and its dataflows) in AEP "
            "(Sources → Accounts) when no longer needed"
        )
    return lines
