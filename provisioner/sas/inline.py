"""`sas.mode: inline`: the token is a Terraform variable rendered into each cluster's spark_conf.

So it is a plan input, sits in the saved plan and the state, and `terraform apply` puts it
live. A rotation plans with the current token first (provider, backend, pending changes
besides the token), and applies with the new one inside its window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.errors import ExitCode, ProvisionError
from provisioner.review.plan_summary import summarize
from provisioner.sas import expiry
from provisioner.sas.expiry import TokenReplaced
from provisioner.sas.mode import ModeRun, RotationFacts
from provisioner.secret import Secret
from provisioner.terraform import (
    Applied,
    ApplyOptions,
    PlanOptions,
    TerraformState,
    plan_and_apply,
    read_state,
    saved_plan,
)

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials

SAS_VARIABLE = "dlz_sas_token"


class Inline:
    name = "inline"
    token_in_terraform = True
    tool_writes_secret = False

    def terraform_variables(self, sas: Secret | None) -> dict[str, Secret] | None:
        return {SAS_VARIABLE: sas} if sas is not None else None

    def kept_on_destroy(self, env: Environment) -> bool:
        return False

    def expected_entry(self, env: Environment, creds: DlzCredentials) -> str:
        return creds.sas_token.reveal()

    def different_entry(self) -> str:
        return "a token other than AEP's current one"

    def secret_holder(self, env: Environment) -> str | None:
        return None  # each cluster's spark_conf holds the token itself

    def list_secrets(self, client: WorkspaceClient, env: Environment) -> Mapping[str, int] | None:
        return None

    def token_replaced(
        self, state: TerraformState, env: Environment, creds: DlzCredentials, listed: Mapping[str, int] | None
    ) -> TokenReplaced | None:
        held: dict[str, str] = {}
        for name, attrs in sorted(state.instances("databricks_cluster")):
            value = (attrs.get("spark_conf") or {}).get(creds.spark_conf_key)
            if isinstance(value, str) and value:
                held[f"cluster {name}"] = value
        return expiry.token_replaced(held, creds)

    # ---- rotation

    def prepare(
        self,
        run: ModeRun,
        env: Environment,
        creds: DlzCredentials,
        facts: RotationFacts,
        console: Console,
        *,
        plan_file: Path,
        auto_approve: bool,
    ) -> tuple[dict[str, str], RotationFacts]:
        runner = run.runner(env, creds.sas_token, console)
        console.info(f"{env.name}: pre-flight plan with the current token")
        others: list[str] = []
        with saved_plan(runner, PlanOptions(out=plan_file)) as outcome:  # it holds the token about to be revoked
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
        # A plan never writes the state: the one the rotation read before it still holds.
        return facts.state.clusters(), facts

    def probe(self, run: ModeRun, env: Environment) -> None:
        return None  # the pre-flight plan proved provider and backend; nothing else is written

    def put_live(self, run: ModeRun, env: Environment, new: DlzCredentials) -> None:
        return None  # Terraform puts it live (apply_live), after the window's bookkeeping

    def apply_live(
        self, run: ModeRun, env: Environment, new: DlzCredentials, console: Console
    ) -> dict[str, str] | None:
        runner = run.runner(env, new.sas_token, console)
        # Refresh stays on: applying against a stale view (a cluster deleted outside) would fail here.
        runner.apply(ApplyOptions(plan_file=None))
        # Read again: the apply may have re-created clusters (new ids) — the restarts need those.
        return read_state(runner, init=False).clusters()

    def after_window(self, run: ModeRun, env: Environment, new: DlzCredentials, facts: RotationFacts) -> None:
        return None

    def reconcile(self, run: ModeRun, env: Environment, console: Console) -> None:
        return None  # the apply inside the window wrote the state already

    def resume(
        self,
        run: ModeRun,
        env: Environment,
        creds: DlzCredentials,
        facts: RotationFacts,
        console: Console,
        *,
        plan_file: Path,
        ask: Callable[[], bool],
        render: Callable[[], object],
    ) -> dict[str, str] | None:
        render()
        runner = run.runner(env, creds.sas_token, console)
        runner.init()
        if plan_and_apply(runner, PlanOptions(out=plan_file), ask) is Applied.DECLINED:
            console.warn("resume cancelled; clusters may still hold the revoked token")
            return None
        # Read again: the apply changed the state (a cluster re-created has a new id).
        return read_state(runner, init=False).clusters()


def _changes_besides_token(plan: dict[str, Any], env: Environment, creds: DlzCredentials) -> list[str]:
    """Addresses the pre-flight plan changes for another reason than the SAS token."""
    out = []
    for res in summarize(plan, env, creds).resources:
        if res.action == "no-op":
            continue
        token_only = res.type == "databricks_cluster" and res.action == "update"
        if not (token_only and res.changed == [f"spark_conf[{creds.spark_conf_key}]"]):
            out.append(f"{res.address} {res.action}")
    return out
