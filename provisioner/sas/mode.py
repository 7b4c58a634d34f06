"""The SAS mode: how the DLZ SAS token reaches the clusters, as one object per mode.

`inline` (provisioner.sas.inline): the token is a Terraform variable rendered into each
cluster's spark_conf, so it is a plan input, sits in plan files and state, and is put live by
`terraform apply`. `secret_scope` (provisioner.sas.secret_scope): the clusters reference a
Databricks secret the tool writes itself, outside Terraform. Every command asks the mode
object of its environment (provisioner.sas.modes.mode_of), as pre-commit asks a hook's
language: nothing else tests the mode's name.

`ModeRun` is what a mode needs from the command's run; provisioner.run.context.RunContext
has it, and this package does not import the run layer (it sits below it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.sas.expiry import TokenReplaced
from provisioner.secret import Secret
from provisioner.terraform import TerraformRunner, TerraformState

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials


class ModeRun(Protocol):
    """The run's clients, as provisioner.run.context.RunContext hands them out."""

    def workspace_client(self, env: Environment) -> WorkspaceClient: ...

    def runner(self, env: Environment, sas: Secret | None, console: Console | None = None) -> TerraformRunner: ...


@dataclass(frozen=True)
class RotationFacts:
    """What a rotation read before its window, each once (issue 25): the state and, in
    secret_scope mode, the scope's listing. Later steps take them from here."""

    state: TerraformState
    listed: Mapping[str, int] | None  # the scope's keys -> written (ms); None: not read (inline, or no clusters)
    # The root was rendered when the state was read. Else the state may be unreachable yet (a
    # fresh checkout of a remote backend): it is read again once the root is rendered.
    rendered: bool = True


class SasMode(Protocol):
    name: str
    # The token is a Terraform input (a variable: in plan files and state); a plan of the
    # root on disk made before AEP answers cannot be the plan this run makes.
    token_in_terraform: bool
    # The tool writes the secret's value itself: plan checks the scope, apply writes it.
    tool_writes_secret: bool

    def terraform_variables(self, sas: Secret | None) -> dict[str, Secret] | None:
        """What Terraform's child environment carries as TF_VAR_* (never the token unless it is an input)."""

    def kept_on_destroy(self, env: Environment) -> bool:
        """Does `destroy` keep something this root manages (the scope holding the live token)?"""

    def expected_entry(self, env: Environment, creds: DlzCredentials) -> str:
        """What a cluster's spark_conf entry for the DLZ must hold (compared, never printed)."""

    def different_entry(self) -> str:
        """How status names an entry that holds something else."""

    def secret_holder(self, env: Environment) -> str | None:
        """Where the clusters read the token from when it is a secret ("secret <scope>/<key>",
        as TokenReplaced.holders names it); None when each cluster holds it itself."""

    def list_secrets(self, client: WorkspaceClient, env: Environment) -> Mapping[str, int] | None:
        """The scope's keys -> written (ms), one call; None where the mode has no scope."""

    def token_replaced(
        self, state: TerraformState, env: Environment, creds: DlzCredentials, listed: Mapping[str, int] | None
    ) -> TokenReplaced | None:
        """Does the workspace hold a token other than AEP's current one? The one answer, for plan,
        status and rotate: from the state and (secret_scope) the scope's `listed` keys; None: no."""

    # ---- rotation (provisioner.operations.rotate): everything before the refresh can fail,
    # after it only what puts the new token live.

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
        """The mode's pre-flight (the root is rendered and initialised): managed cluster ids, and the facts as
        they stand after it (a listing read here is kept for the window)."""

    def probe(self, run: ModeRun, env: Environment) -> None:
        """The last check before the point of no return (secret_scope: may we write the scope?)."""

    def put_live(self, run: ModeRun, env: Environment, new: DlzCredentials) -> None:
        """First thing in the window, before any bookkeeping: the one write a restarting
        cluster needs (secret_scope: the in-place `secrets/put`; inline: nothing yet)."""

    def apply_live(
        self, run: ModeRun, env: Environment, new: DlzCredentials, console: Console
    ) -> dict[str, str] | None:
        """After the window's bookkeeping, before the restarts (inline: `terraform apply` with the
        new token). The managed cluster ids when this changed them, else None."""

    def after_window(self, run: ModeRun, env: Environment, new: DlzCredentials, facts: RotationFacts) -> None:
        """Bookkeeping that waited for the restarts (secret_scope: the fingerprint)."""

    def reconcile(self, run: ModeRun, env: Environment, console: Console) -> None:
        """After the window: let the state catch up with the restarted clusters (a failure warns)."""

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
        """Put AEP's current (already refreshed) token live without refreshing; the cluster ids
        to converge, or None when the user declined. `render` renders the root, for a mode
        whose resume runs Terraform on it."""
