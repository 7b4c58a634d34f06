"""The secret step of `plan` and `apply` in secret_scope mode (see provisioner.sas.secret_value).

plan:  after `terraform plan`, check the scope (one line if it cannot work) and say whether
       the secret holds AEP's current token.
apply: the value is written *before* `terraform apply`, so a cluster the apply creates or
       restarts starts with it. On a first apply the managed scope does not exist yet: it is
       created alone first (`-target`, part of what was reviewed), the value written, and the
       rest re-planned — applied only if it is exactly what was reviewed.
Migration from the layout that kept the token in `databricks_secret.dlz_sas_token`: the
template's `removed { lifecycle { destroy = false } }` block makes Terraform forget that
resource without deleting the live secret, which this step then owns. If the value already
is AEP's current token only its fingerprint is added (no restart); local state backups
still holding the old resource (and so the token) are deleted after the apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.errors import ProvisionError
from provisioner.sas.mode import ModeRun
from provisioner.sas.secret_value import (
    LEGACY_SECRET_ADDRESS,
    SCOPE_ADDRESS,
    SecretFreshness,
    check_scope,
    judge_freshness,
    legacy_secret_in_state,
    list_scope,
    record_fingerprint,
    scope_in_state,
    write_secret,
)
from provisioner.terraform import ApplyOptions, PlanOptions, TerraformRunner, TerraformState

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials


@dataclass(frozen=True)
class SecretCheck:
    """What plan-time checks found; apply acts on it."""

    scope_exists: bool
    scope_managed_in_state: bool
    legacy_value_current: bool  # the old layout's state holds AEP's current token
    freshness: SecretFreshness | None  # None: the scope does not exist yet

    @property
    def needs_write(self) -> bool:
        """Apply writes the value (or, migrating, only its fingerprint: no new value)."""
        if self.freshness is None:
            return True
        return not self.freshness.holds_current and not self._migration_only

    @property
    def _migration_only(self) -> bool:
        fresh = self.freshness
        return bool(
            fresh is not None
            and fresh.holds_current is None
            and not fresh.rewritten_outside
            and self.legacy_value_current
        )


@dataclass(frozen=True)
class ScopeReading:
    """The workspace's part of `check`: it needs no AEP token, so `plan` reads it while AEP answers."""

    exists: bool
    listed: Mapping[str, int]  # the scope's keys and when each was written (ms); empty if it does not exist


def check(ctx: ModeRun, env: Environment, creds: DlzCredentials, state: TerraformState) -> SecretCheck:
    """Scope checks and freshness, before anything is applied. Raises ProvisionError (one line).

    `state`: the root's state — a saved plan's prior state where there is one
    (`terraform.planfile.planned_on`, no Terraform process), else `read_state`."""
    return judge(env, read_scope(ctx.workspace_client(env), env, state), creds, state)


def read_scope(client: WorkspaceClient, env: Environment, state: TerraformState) -> ScopeReading:
    """The scope's plan-time checks (dlz_secret.check_scope), then its listing if it exists."""
    exists = check_scope(client, env, state)
    return ScopeReading(exists, list_scope(client, env) if exists else {})


def judge(env: Environment, reading: ScopeReading, creds: DlzCredentials, state: TerraformState) -> SecretCheck:
    """What `reading` and `state` say about the value, compared with AEP's current token."""
    legacy = _legacy_value(state)
    return SecretCheck(
        scope_exists=reading.exists,
        scope_managed_in_state=scope_in_state(state),
        legacy_value_current=legacy is not None and legacy == creds.sas_token.reveal(),
        freshness=judge_freshness(reading.listed, env, creds) if reading.exists else None,
    )


def state_inputs(state: TerraformState) -> tuple[object, ...]:
    """What `check` reads from the state: for equal inputs it finds the same (compared in
    memory; the legacy layout's value is a token)."""
    return scope_in_state(state), _legacy_value(state)


def report(env: Environment, found: SecretCheck, console: Console) -> None:
    if found.freshness is not None:
        line = found.freshness.describe()
        if found.legacy_value_current and found.freshness.holds_current is None:
            line = f"secret {env.sas.secret_scope}/{env.sas.secret_key}: holds AEP's current token (older layout)"
        console.info(f"{env.name}: {line}")
    else:
        console.info(
            f"{env.name}: secret scope {env.sas.secret_scope} is created by this apply; the tool then writes "
            f"{env.sas.secret_key}"
        )


def before_apply(
    ctx: ModeRun,
    env: Environment,
    creds: DlzCredentials,
    runner: TerraformRunner,
    plan_file: Path | None,
    found: SecretCheck,
    console: Console,
    lock_timeout: str = "0s",
) -> None:
    """Write the value before `plan_file` is applied (None: Terraform has nothing to do).

    On a first apply the scope does not exist yet: it is created alone, the value written,
    and `plan_file` replaced by a new plan of the rest — the same changes, or an error.
    """
    if plan_file is not None and env.sas.manage_scope and not found.scope_exists:
        _bootstrap_scope(ctx, env, creds, runner, plan_file, console, lock_timeout)
    else:
        _ensure_value(ctx, env, creds, found, console)


def after_apply(env: Environment, console: Console, saved_plan: Path) -> None:
    """`saved_plan`: `provision plan`'s, stale once the state changed (Terraform refuses it);
    one made before a migration carries the old state, token included. Removed."""
    _drop_legacy_backup(env, console)
    saved_plan.unlink(missing_ok=True)


def _ensure_value(ctx: ModeRun, env: Environment, creds: DlzCredentials, found: SecretCheck, console: Console) -> None:
    fresh = found.freshness
    client = ctx.workspace_client(env)
    if fresh is not None and fresh.holds_current:
        return
    scope, key = env.sas.secret_scope, env.sas.secret_key
    if not found.needs_write:
        # The value is already right: adding its fingerprint restarts nothing.
        record_fingerprint(client, env, creds)
        console.info(f"{env.name}: secret {scope}/{key} holds AEP's current token; the tool owns it from now on")
        return
    write_secret(client, env, creds)
    console.info(f"{env.name}: wrote AEP's current token to secret {scope}/{key} (in place)")


def _bootstrap_scope(
    ctx: ModeRun,
    env: Environment,
    creds: DlzCredentials,
    runner: TerraformRunner,
    plan_file: Path,
    console: Console,
    lock_timeout: str,
) -> None:
    """First apply: scope, then value, then the reviewed rest (a cluster must find its secret)."""
    reviewed = _changes(runner.show_json(plan_file))
    if reviewed.pop(SCOPE_ADDRESS, None) is None:
        _ensure_value(ctx, env, creds, SecretCheck(False, False, False, None), console)
        return
    console.info(
        f"{env.name}: creating secret scope {env.sas.secret_scope} alone first (terraform apply -target), "
        "writing the token, then applying the rest of the reviewed plan — a cluster's secret must exist "
        "before the cluster starts"
    )
    runner.apply(ApplyOptions(plan_file=None, lock_timeout=lock_timeout, targets=(SCOPE_ADDRESS,)))
    write_secret(ctx.workspace_client(env), env, creds)
    console.info(f"{env.name}: wrote AEP's current token to secret {env.sas.secret_scope}/{env.sas.secret_key}")
    # The reviewed plan is stale now (the state changed): plan the rest into its place.
    runner.plan(PlanOptions(out=plan_file, lock_timeout=lock_timeout))
    now = _changes(runner.show_json(plan_file))
    if now != reviewed:
        differ = sorted(set(now.items()) ^ set(reviewed.items()))
        listed = ", ".join(f"{a} {'/'.join(x)}" for a, x in differ[:5])
        raise ProvisionError(
            f"{env.name}: the secret scope was created, but the rest of the plan changed since it was reviewed "
            f"({listed}) — run `provision plan` and `provision apply` again"
        )


def _changes(plan: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    out = {}
    for change in plan.get("resource_changes", []):
        actions = tuple(change.get("change", {}).get("actions", []))
        if actions not in ((), ("no-op",), ("read",)):
            out[str(change.get("address"))] = actions
    return out


def _legacy_value(state: TerraformState) -> str | None:
    """The token the old layout's state holds (compared, never shown)."""
    attrs = state.resource(*LEGACY_SECRET_ADDRESS.split("."))
    value = (attrs or {}).get("string_value")
    return value if isinstance(value, str) else None


def _drop_legacy_backup(env: Environment, console: Console) -> None:
    """A local backend keeps the previous state beside the new one: after the migration that
    is the old layout, token included. The new state is complete, so the copy goes."""
    for backup in [env.root_dir / "terraform.tfstate.backup", *env.root_dir.glob("terraform.tfstate.*.backup")]:
        try:
            doc = json.loads(backup.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and legacy_secret_in_state(TerraformState(doc)):
            backup.unlink()
            console.info(f"removed {backup.name}: it held the SAS token of the layout before this apply")
