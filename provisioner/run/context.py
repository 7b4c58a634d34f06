"""The steps every command composes, in the one direction data flows:
config → credentials → render → terraform → report.

`RunContext` holds what a command run shares: the config, the console, the `Target` (real
services or the offline sandbox — the one seam between them, see provisioner/run/target.py),
the Databricks identity resolved once per workspace and the cluster policies read once per
command. The step functions below each do one thing and only look left.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.clock import Clock, RealClock
from provisioner.config.model import Config, Environment, load_config
from provisioner.console import Console
from provisioner.databricks import identity, sdk
from provisioner.databricks.access_mode import judge_environment
from provisioner.databricks.identity import AuthPin, predicted_auth_type
from provisioner.databricks.pinning import check_pin_limit, resolve_pins, without_gone_imports
from provisioner.databricks.policies import ClusterPolicy, apply_policies, fetch_policies
from provisioner.databricks.preflight import check_access
from provisioner.errors import ConfigError, ExitCode, ProvisionError
from provisioner.render.root import PROVIDER_CONSTRAINT, DlzTarget, RenderedRoot, render_root, warm, write_root
from provisioner.run.target import RealTarget, Target
from provisioner.run.warmup import in_background, in_thread
from provisioner.sas.modes import mode_of
from provisioner.secret import Secret
from provisioner.terraform import (
    PlanOptions,
    TerraformRunner,
    build_child_env,
    create_empty_state,
    find_terraform,
    read_state,
)
from provisioner.terraform.binary import prefetch
from provisioner.terraform.planfile import remove_abandoned_plans
from provisioner.terraform.state import restore_torn_local_state

if TYPE_CHECKING:
    from provisioner.aep.client import AepClient
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.databricks.identity import AuthPin, Identity, OpenedWorkspace
    from provisioner.databricks.workspace import WorkspaceClient
    from provisioner.lock.store import LockStore
    from provisioner.terraform import InitOptions, TerraformBinary, TerraformRunner, TerraformState
    from provisioner.terraform.early import EarlyKeeper

# Secrets the Terraform child never needs: least privilege for the provider processes.
_NOT_FOR_TERRAFORM = ("AEP_CLIENT_SECRET", "AEP_ACCESS_TOKEN")
PLAN_FILE_NAME = "dlz-provisioner.tfplan"


@dataclass
class _Workspace:
    opened: OpenedWorkspace
    proof: Callable[[], Identity]  # waits for SCIM Me, started when the client was opened
    announced: bool = False


@dataclass
class RunContext:
    config: Config
    console: Console
    environ: Mapping[str, str]
    target: Target
    # What provision.yaml may read from the environment (DATABRICKS_HOST); empty in the sandbox,
    # which serves the workspaces the file names.
    config_environ: Mapping[str, str] = field(default_factory=dict)
    debug: bool = False
    interactive: bool = False
    # Terraform's keeper (and the target's provider server), started while the command's
    # modules loaded (provisioner/run/early.py): the first Terraform command with providers takes it.
    early_keeper: EarlyKeeper | None = None
    # The one clock of the run (provisioner/clock.py): converge's waits and deadline, the poll
    # budget and pacing, the SDK's retries, cluster waits, the lock's wait, the host check.
    clock: Clock = field(default_factory=RealClock)
    _clients: dict[str, AepClient] = field(default_factory=dict, repr=False)
    # host → opened client and its identity's proof; shared by copies made with dataclasses.replace.
    _workspaces: dict[str, _Workspace] = field(default_factory=dict, repr=False)
    _workspace_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Warnings already printed in this command (shared by copies, like the workspaces): one
    # about the user's environment is said once, not once per Terraform run.
    _warned: set[str] = field(default_factory=set, repr=False)
    # environment name -> its held lock (provisioner.lock.environment), where its journal is kept.
    held_locks: dict[str, LockStore] = field(default_factory=dict, repr=False)
    # host → policy id → the cluster policy as read in this command (shared by copies): the
    # access-mode check and the render both apply them, and parallel environments share them.
    _policies: dict[str, dict[str, ClusterPolicy]] = field(default_factory=dict, repr=False)
    _policy_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    # ---- AEP

    def aep_client(self, env: Environment) -> AepClient:
        from provisioner.aep.client import AepClient

        settings = self.target.aep_settings(env)
        key = repr(settings)
        if key not in self._clients:
            self._clients[key] = AepClient(settings, self.target.aep_secrets(), clock=self.clock)
        return self._clients[key]

    # ---- Databricks: one identity per workspace, for our calls and Terraform's

    def dlz_backend(self) -> str:
        """What answers for the landing zone's storage: `azure`, or the sandbox's `azurite` / `oracle`."""
        return self.target.dlz_backend()

    def warm_dlz(self) -> None:
        """Get the landing zone's storage ready ahead of a DLZ check (the sandbox's Azurite takes seconds)."""
        self.target.warm_dlz()

    def identity(self, env: Environment) -> Identity:
        """Who this run is in the environment's workspace: proven (SCIM Me) and printed once."""
        opened = self._workspace(env)
        who = opened.proof()
        with self._workspace_lock:
            if not opened.announced:
                opened.announced = True
                self.console.info(f"{env.name}: Databricks as {who.describe()}")
                if who.note:
                    self.console.info(f"{env.name}: {who.note}")
        return who

    def workspace_client(self, env: Environment) -> WorkspaceClient:
        """Our own calls to the workspace (status, adopt, connect, converge, preflight), once
        the identity is proven."""
        self.identity(env)
        return self._workspace(env).opened.client

    def reading_client(self, env: Environment) -> WorkspaceClient:
        """The workspace client before its identity is proven, for reads that overlap the proof
        (status). Whoever uses it asks `identity()` too: a refused login is reported there."""
        return self._workspace(env).opened.client

    def auth_pin(self, env: Environment) -> AuthPin:
        """The auth type databricks-sdk resolved (Terraform's pin); does not wait for the proof."""

        return AuthPin(self._workspace(env).opened.auth_type)

    def predicted_auth_pin(self, env: Environment) -> AuthPin | None:
        """`auth_pin` guessed without resolving anything (identity.predicted_auth_type), or None."""

        supplied = self.target.databricks_credentials()
        auth_type = predicted_auth_type(env.databricks_auth, self.environ, supplied)
        return None if auth_type is None else AuthPin(auth_type)

    def _workspace(self, env: Environment) -> _Workspace:
        host = env.databricks_host
        with self._workspace_lock:
            if host not in self._workspaces:
                in_background(sdk.preload)  # the SDK's service modules load while host metadata answers
                identity.register_secrets(self.environ)
                url = self.target.workspace_url(host)
                opened = identity.open_workspace(
                    host, url, env.databricks_auth, self.target.databricks_credentials(), self.clock
                )
                self._workspaces[host] = _Workspace(opened, in_thread(lambda: identity.prove(opened), "identity"))
            return self._workspaces[host]

    def cluster_policies(self, env: Environment) -> Mapping[str, ClusterPolicy]:
        """The policies `env`'s clusters name, by id, each read once per command
        (provisioner.databricks.policies `fetch_policies`): a later step, or another environment
        on the workspace, gets the same answer without asking again."""
        host = env.databricks_host
        with self._workspace_lock:
            known = self._policies.setdefault(host, {})
            lock = self._policy_locks.setdefault(host, threading.Lock())
        with lock:  # two environments planned at once naming one policy: one read
            unread = tuple(c for c in env.clusters if c.policy_id is not None and c.policy_id not in known)
            if unread:
                known.update(fetch_policies(self.workspace_client(env), dataclasses.replace(env, clusters=unread)))
            return {c.policy_id: known[c.policy_id] for c in env.clusters if c.policy_id is not None}

    def warn_once(self, console: Console, text: str) -> None:
        """Print `text` as a warning unless this command has printed it already."""
        with self._workspace_lock:
            if text in self._warned:
                return
            self._warned.add(text)
        console.warn(text)

    # ---- Terraform

    def terraform_binary(self) -> TerraformBinary:

        return find_terraform(self.environ)  # memoised per binary in provisioner.terraform.binary

    def runner(
        self,
        env: Environment,
        sas: Secret | None,
        console: Console | None = None,
        identity: Identity | AuthPin | None = None,
        *,
        provider_auth: bool = True,
    ) -> TerraformRunner:
        """A runner whose child environment carries the run's Databricks identity (or the one
        given), its auth type pinned. Without `provider_auth`, for commands that configure no
        provider (`state pull`, `init`): nothing is pinned, and nothing waits for the identity."""

        # The next command on a root deletes the token-bearing plan a killed run left there
        # (said on the run's console: a quiet one for reading state would swallow it).
        for path in remove_abandoned_plans(default_plan_file(env).parent):
            self.console.info(f"removed {_display(path)}: a plan file left by a run that was killed")
        console = console or self.console
        if env.backend.type == "pg" and not self.environ.get("PG_CONN_STR"):
            raise ConfigError(
                f"{self.config.path}: terraform.backend: type pg reads its connection string from PG_CONN_STR, "
                "which is not set — export PG_CONN_STR=postgres://user@host/db"
            )
        inherited = {k: v for k, v in self.environ.items() if k not in _NOT_FOR_TERRAFORM}
        extra: dict[str, str] = {"CHECKPOINT_DISABLE": inherited.get("CHECKPOINT_DISABLE", "1")}
        extra.update(self.target.terraform_env())
        if provider_auth:
            # The auth type the SDK resolved: Terraform need not wait for the identity's proof.
            auth = identity or self.auth_pin(env)
            extra.update(auth.terraform_env(env.databricks_auth))
        child = build_child_env(
            inherited,
            extra=extra,
            variables=mode_of(env).terraform_variables(sas),
            secret_env=dict(self.target.databricks_credentials()),
            debug=self.debug,
            warn=lambda text: self.warn_once(console, text),
        )
        restored = restore_torn_local_state(env.root_dir, child.values)
        if restored is not None:
            self.console.warn(
                f"{_display(restored)} was empty: Terraform was killed while it wrote the state — "
                f"put back the state it had saved before that run in {restored.name}.backup"
            )
        return TerraformRunner(
            self.terraform_binary(),
            env.root_dir,
            child,
            out=console.line,
            err=console.stderr_line,
            lock_seed=self.target.provider_lock_file(PROVIDER_CONSTRAINT),
            init_dir=self.target.init_dir(env.root_dir),
            quiet=self.target.expected_warnings(),
            early=self.early_keeper,
        )


@contextmanager
def open_context(
    config_path: str | os.PathLike[str],
    console: Console,
    *,
    sandbox: bool = False,
    debug: bool = False,
    early_keeper: EarlyKeeper | None = None,
) -> Iterator[RunContext]:
    """Load the config and, with `sandbox`, run the emulators for the duration of the command.

    `debug` lets TF_LOG* through to Terraform; `early_keeper`: see `RunContext`."""
    environ = dict(os.environ)

    prefetch(environ)  # overlaps `terraform version` with the config and credential steps
    config_environ: Mapping[str, str] = {} if sandbox else environ
    config = load_config(config_path, environ=config_environ)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()

    def context(target: Target) -> RunContext:
        return RunContext(
            config,
            console,
            environ,
            target,
            config_environ,
            debug=debug,
            interactive=interactive,
            early_keeper=early_keeper,
        )

    if not sandbox:
        yield context(RealTarget(environ))
        return
    from provisioner.sandbox.target import SandboxTarget, sandbox_for

    with sandbox_for(config, sandbox_dir(config.path, environ), environ) as running:
        target = SandboxTarget(running)
        for notice in target.notices():
            console.info(notice)
        yield context(target)


def reload_config(ctx: RunContext) -> Config:
    """Read provision.yaml again (after a command edited it), as `open_context` read it."""
    ctx.config = load_config(ctx.config.path, environ=ctx.config_environ)
    return ctx.config


def sandbox_dir(config_path: Path, environ: Mapping[str, str]) -> Path:
    if environ.get("PROVISION_SANDBOX_DIR"):
        return Path(environ["PROVISION_SANDBOX_DIR"])
    return config_path.resolve().parent / ".provision" / "sandbox"


# ---- steps ------------------------------------------------------------------------------


def fetch_credentials(ctx: RunContext, env: Environment, *, render_next: bool = True) -> DlzCredentials:
    """The DLZ credentials; with `render_next`, render's set-up runs while IMS and AEP answer."""
    client = ctx.aep_client(env)
    if render_next:
        in_background(warm)
    return client.get_credentials()


def identify(ctx: RunContext, env: Environment) -> Identity:
    """First step of a command that changes or inspects a workspace: the local credentials are
    there (no call yet), then who this run is in the workspace — before any AEP call."""
    ctx.target.aep_secrets().require()
    return ctx.identity(env)


def fetch_credentials_aside(
    ctx: RunContext, env: Environment, *, render_next: bool = True
) -> Callable[[], DlzCredentials]:
    """Ask AEP on a thread of its own (after checking its secret is there); call the result to
    wait for the credentials (or the failure).

    For commands that only read (plan, status): a GET refreshes AEP's token only once it has
    expired — when the clusters' copy no longer works anyway — so asking AEP before the
    identity is proven loses nothing. Commands that refresh on purpose (`rotate`, which
    revokes a live token) or change clusters prove the identity first (`identify`)."""

    ctx.target.aep_secrets().require()
    return in_thread(lambda: fetch_credentials(ctx, env, render_next=render_next), "aep-credentials")


def check_workspace_access(ctx: RunContext, env: Environment, cluster_ids: Mapping[str, str]) -> None:
    """Preflight before a change: the identity can manage the clusters and write the scope."""

    check_access(ctx.workspace_client(env), ctx.identity(env), env, cluster_ids, ctx.console.warn)


def render_env(ctx: RunContext, env: Environment, creds: DlzCredentials, write: bool = True) -> RenderedRoot:
    env = with_pins(ctx, with_policies(ctx, env))
    if any(c.import_id for c in env.clusters):
        env = without_gone_imports(ctx.workspace_client(env), env, ctx.console.warn)
    rendered = render_root(env, DlzTarget(creds.container_name, creds.storage_account_name), ctx.config.path)
    if write:
        written = write_root(rendered)
        if written:
            ctx.console.info(f"rendered {_display(env.root_dir)}: {', '.join(written)}")
        return dataclasses.replace(rendered, written=tuple(written))
    return rendered


def with_policies(ctx: RunContext, env: Environment) -> Environment:
    """The clusters as their cluster policies make them (provisioner.databricks.policies); fails on a conflict."""
    if not any(c.policy_id for c in env.clusters):
        return env

    return apply_policies(env, ctx.cluster_policies(env), ctx.console.info)


def with_pins(ctx: RunContext, env: Environment) -> Environment:
    """Each cluster's `is_pinned` decided for the run's identity (only admins may pin:
    provisioner.databricks.pinning `resolve_pins`)."""
    if all(c.is_pinned is False for c in env.clusters):
        return env

    return resolve_pins(
        ctx.workspace_client(env), ctx.identity(env), env, lambda text: ctx.warn_once(ctx.console, text)
    )


def check_pins(ctx: RunContext, env: Environment) -> None:
    """Before Terraform: pinning past the workspace's limit would fail half-way through an apply.

    A run that may not pin pins nothing (`with_pins`), so it has no limit to pass."""
    if any(c.is_pinned is not False for c in env.clusters) and ctx.identity(env).is_admin:
        check_pin_limit(ctx.workspace_client(env), env)


def check_access_modes(ctx: RunContext, env: Environment) -> None:
    """Before Terraform: each cluster's access mode, as its policy makes it, judged for the run's
    identity (provisioner.databricks.access_mode) — one line per cluster that will not work for
    this run, and a refusal, nothing changed, for one whose Spark-config SAS would not be used."""
    if any(c.policy_id for c in env.clusters):
        # The policy may fix the mode (a "Shared Compute" policy fixes USER_ISOLATION); its notes
        # are said by the render.
        env = apply_policies(env, ctx.cluster_policies(env))
    found = judge_environment(env, ctx.identity(env))
    for line in found.warnings:
        ctx.warn_once(ctx.console, line)
    if found.refusals:
        raise ProvisionError("\n".join(found.refusals))


def default_plan_file(env: Environment) -> Path:
    return env.root_dir / ".terraform" / PLAN_FILE_NAME


def init_env(
    ctx: RunContext,
    env: Environment,
    runner: TerraformRunner,
    console: Console | None = None,
    *,
    init: InitOptions | None = None,
    init_lock: AbstractContextManager[object] | None = None,
) -> None:
    """init when needed (under `init_lock` if given); after a migration, drop the stale local state.

    `init` carries e.g. migrate_state (asked for explicitly).
    """
    console = console or ctx.console
    with init_lock or nullcontext():
        if runner.init(init):
            console.info(f"initialised {_display(env.root_dir)}")
            if init is not None and init.migrate_state and env.backend.type != "local":
                _remove_migrated_local_state(env, console)
            # Else a pg root's first plan would hold pg's database-wide creation lock.
            if env.backend.type == "pg" and create_empty_state(runner):
                console.info(f"{env.name}: created its (empty) state in the pg backend")


def plan_env(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    plan_file: Path,
    console: Console | None = None,
    *,
    init: InitOptions | None = None,
    lock_timeout: str = "0s",
    init_lock: AbstractContextManager[object] | None = None,
) -> ExitCode:
    """init (see init_env) → plan -out (0600): ExitCode.NO_CHANGES or ExitCode.CHANGES.

    `lock_timeout` is how long to wait for another run's state lock (Terraform's default of
    0s fails at once).
    """

    runner = ctx.runner(env, creds.sas_token, console)
    init_env(ctx, env, runner, console, init=init, init_lock=init_lock)
    return runner.plan(PlanOptions(out=plan_file, lock_timeout=lock_timeout))


def read_env_state(
    ctx: RunContext, env: Environment, *, init: bool = True, console: Console | None = None
) -> TerraformState:
    """The environment's Terraform state, read quietly (with `init`, init first when needed;
    nothing for a root never rendered). Terraform's chatter would be noise in a report and
    break --json. `console`: where its lines go instead of the run's (quiet) console."""

    quiet = console or Console(ctx.console.out, ctx.console.err, color=ctx.console.color, quiet=True)
    return read_state(ctx.runner(env, sas=None, console=quiet, provider_auth=False), init=init)


def _remove_migrated_local_state(env: Environment, console: Console) -> None:
    """After a migration the old local state is a stale copy that still holds the SAS token."""
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        path = env.root_dir / name
        if path.is_file():
            path.unlink()
            console.info(f"removed {_display(path)}: the state now lives in the {env.backend.type} backend")


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
