"""`sas.mode: secret_scope`: the clusters reference a Databricks secret the tool writes itself.

Terraform owns the structure (the scope, unless `sas.manage_scope: false`, and the clusters
carrying `{{secrets/<scope>/<key>}}`); the value is written outside Terraform
(provisioner.sas.secret_value), so the token is in no plan file and no state. A rotation has
no Terraform inside its window: the in-place `secrets/put`, then the restarts; the state is
reconciled after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.errors import ProvisionError
from provisioner.sas import expiry, secret_value
from provisioner.sas.expiry import TokenReplaced
from provisioner.sas.mode import ModeRun, RotationFacts
from provisioner.secret import Secret
from provisioner.terraform import ApplyOptions, TerraformState

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials


class SecretScope:
    name = "secret_scope"
    token_in_terraform = False
    tool_writes_secret = True

    def terraform_variables(self, sas: Secret | None) -> dict[str, Secret] | None:
        return None  # the root declares no variable: the token stays out of Terraform entirely

    def kept_on_destroy(self, env: Environment) -> bool:
        return env.sas.manage_scope  # prevent_destroy: the live token is in it

    def expected_entry(self, env: Environment, creds: DlzCredentials) -> str:
        return env.sas.secret_reference

    def different_entry(self) -> str:
        return "not the secret reference"

    def secret_holder(self, env: Environment) -> str | None:
        return f"secret {env.sas.secret_scope}/{env.sas.secret_key}"

    def list_secrets(self, client: WorkspaceClient, env: Environment) -> Mapping[str, int] | None:
        return secret_value.list_scope(client, env)

    def token_replaced(
        self, state: TerraformState, env: Environment, creds: DlzCredentials, listed: Mapping[str, int] | None
    ) -> TokenReplaced | None:
        secret = f"secret {env.sas.secret_scope}/{env.sas.secret_key}"  # as secret_holder names it
        known: list[str] = []
        if listed is not None:
            fresh = secret_value.judge_freshness(listed, env, creds)
            if fresh.present and fresh.holds_current is False:
                known.append(secret)
        return expiry.token_replaced(_held_in_state(state, env, secret), creds, known_stale=known)

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
        if secret_value.legacy_secret_in_state(facts.state):
            raise ProvisionError(
                f"{env.name}: the Terraform state still holds the SAS token ({secret_value.LEGACY_SECRET_ADDRESS}, "
                "the layout before the tool wrote the secret itself) — run `provision apply` once to move it "
                "(the live secret is kept, no gap), then rotate"
            )
        client = run.workspace_client(env)
        secret_value.check_scope(client, env, facts.state, must_exist=True)
        # READ on the scope: the listing the rotation may have read already proves it.
        listed = facts.listed if facts.listed is not None else secret_value.list_scope(client, env)
        return facts.state.clusters(), RotationFacts(facts.state, listed)

    def probe(self, run: ModeRun, env: Environment) -> None:
        secret_value.probe_write(run.workspace_client(env), env)

    def put_live(self, run: ModeRun, env: Environment, new: DlzCredentials) -> None:
        # The one write the restarts need; the fingerprint (more calls) waits for after_window.
        secret_value.put_value(run.workspace_client(env), env, new)

    def apply_live(
        self, run: ModeRun, env: Environment, new: DlzCredentials, console: Console
    ) -> dict[str, str] | None:
        return None  # no Terraform inside the window: the clusters are the ones read before it

    def after_window(self, run: ModeRun, env: Environment, new: DlzCredentials, facts: RotationFacts) -> None:
        secret_value.record_fingerprint(run.workspace_client(env), env, new, listed=facts.listed)

    def reconcile(self, run: ModeRun, env: Environment, console: Console) -> None:
        try:
            run.runner(env, None, console).apply(ApplyOptions(plan_file=None, refresh_only=True))
        except ProvisionError as exc:
            console.warn(f"{env.name}: the rotation is done, but refreshing the Terraform state failed ({exc})")

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
        client = run.workspace_client(env)
        secret_value.check_scope(client, env, facts.state, must_exist=True)
        before = secret_value.ensure_current(client, env, creds, listed=facts.listed)
        if not before.holds_current:
            console.info(f"{env.name}: wrote AEP's current token to secret {env.sas.secret_scope}/{env.sas.secret_key}")
        return facts.state.clusters()


def _held_in_state(state: TerraformState, env: Environment, secret: str) -> dict[str, str]:
    """The layout before the tool wrote the secret kept its value in state (databricks_secret)."""
    held: dict[str, str] = {}
    for _, attrs in state.instances("databricks_secret"):
        if attrs.get("scope") == env.sas.secret_scope and attrs.get("key") == env.sas.secret_key:
            value = attrs.get("string_value")
            if isinstance(value, str) and value:
                held[secret] = value
    return held
