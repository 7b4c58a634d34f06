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
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.config.model import Environment
from provisioner.databricks.cluster_tags import Stray
from provisioner.operations.recover import stray_clusters
from provisioner.run.approval import confirm, require_approval_possible
from provisioner.run.context import RunContext, default_plan_file, fetch_credentials, render_env
from provisioner.sas.modes import mode_of
from provisioner.sas.scope_secret import SCOPE_ADDRESS
from provisioner.terraform import Applied, PlanOptions, TerraformRunner, TerraformState, plan_and_apply, read_state

CLUSTER_TYPE = "databricks_cluster"


@dataclass(frozen=True)
class Destroyed:
    applied: Applied  # NO_CHANGES: nothing to destroy; DECLINED: nothing changed
    kept_scope: bool  # the managed secret scope was left in place
    kept_adopted: tuple[tuple[str, str], ...] = ()  # (name, cluster id): forgotten, not deleted
    strays: tuple[Stray, ...] = ()  # tagged for the environment, unknown to its state: not deleted


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
    return Destroyed(applied, kept_scope, kept if applied is not Applied.DECLINED else (), strays)


def _forget(runner: TerraformRunner, adopted: dict[str, str]) -> None:
    if adopted:
        runner.state_rm([f"{CLUSTER_TYPE}.{name}" for name in sorted(adopted)])
