"""The steps every command composes, in the one direction data flows:
config → credentials → render → terraform → report.

`RunContext` holds what a command run shares (config, console, secrets, the sandbox when
`--sandbox` is on). The step functions below each do one thing and only look left.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.config import Config, Environment, load_config
from provisioner.console import Console
from provisioner.errors import ConfigError, ExitCode
from provisioner.secret import Secret

if TYPE_CHECKING:
    from provisioner.aep.client import AepClient
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.render import RenderedRoot
    from provisioner.sandbox import Sandbox
    from provisioner.terraform import InitOptions, TerraformBinary, TerraformRunner, TerraformState

# Secrets the Terraform child never needs: least privilege for the provider processes.
_NOT_FOR_TERRAFORM = ("AEP_CLIENT_SECRET", "AEP_ACCESS_TOKEN")
PLAN_FILE_NAME = "dlz-provisioner.tfplan"


@dataclass
class RunContext:
    config: Config
    console: Console
    environ: Mapping[str, str]
    debug: bool = False
    sandbox: Sandbox | None = None
    interactive: bool = False
    _clients: dict[str, AepClient] = field(default_factory=dict, repr=False)

    # ---- secrets, only from the environment (or the sandbox's throwaway ones)

    def aep_secrets(self) -> Any:
        from provisioner.aep.client import AepSecrets

        if self.sandbox is not None:
            return AepSecrets(client_secret=self.sandbox.client_secret, access_token=None)
        return AepSecrets.from_environ(self.environ)

    def databricks_token(self) -> Secret | None:
        if self.sandbox is not None:
            return self.sandbox.databricks_token
        value = self.environ.get("DATABRICKS_TOKEN")
        return Secret(value) if value else None

    # ---- clients and runners

    def aep_settings(self, env: Environment) -> Any:
        if self.sandbox is None:
            return env.aep
        return dataclasses.replace(env.aep, platform_url=self.sandbox.platform_url, ims_url=self.sandbox.ims_url)

    def aep_client(self, env: Environment) -> AepClient:
        from provisioner.aep.client import AepClient

        settings = self.aep_settings(env)
        key = repr(settings)
        if key not in self._clients:
            self._clients[key] = AepClient(settings, self.aep_secrets())
        return self._clients[key]

    def workspace_client(self, env: Environment) -> Any:
        """Our own calls to the workspace (status, adopt, connect, converge)."""
        from provisioner.databricks.workspace import WorkspaceClient

        token = require(
            self.databricks_token(),
            "DATABRICKS_TOKEN is not set — export a personal access token for " + env.databricks_host,
        )
        return WorkspaceClient(env.databricks_host, token)

    def terraform_binary(self) -> TerraformBinary:
        from provisioner.terraform import find_terraform

        return find_terraform(self.environ)  # memoised per binary in provisioner.terraform.binary

    def runner(self, env: Environment, sas: Secret | None, console: Console | None = None) -> TerraformRunner:
        from provisioner.terraform import TerraformRunner, build_child_env

        console = console or self.console
        if env.backend.type == "pg" and not self.environ.get("PG_CONN_STR"):
            raise ConfigError(
                f"{self.config.path}: terraform.backend: type pg reads its connection string from PG_CONN_STR, "
                "which is not set — export PG_CONN_STR=postgres://user@host/db"
            )
        inherited = {k: v for k, v in self.environ.items() if k not in _NOT_FOR_TERRAFORM}
        extra: dict[str, str] = {"CHECKPOINT_DISABLE": inherited.get("CHECKPOINT_DISABLE", "1")}
        lock_seed = None
        if self.sandbox is not None:
            extra.update(self.sandbox.terraform_env())
            lock_seed = self.sandbox.provider_lock_file()
        cache_dir = plugin_cache_dir(self.environ)
        if cache_dir is not None and self.sandbox is None:
            extra["TF_PLUGIN_CACHE_DIR"] = str(cache_dir)
        secret_env: dict[str, Secret] = {}
        token = self.databricks_token()
        if token is not None:
            secret_env["DATABRICKS_TOKEN"] = token
        child = build_child_env(
            inherited,
            extra=extra,
            # secret_scope roots declare no variable: the token stays out of Terraform entirely.
            variables={"dlz_sas_token": sas} if sas is not None and env.sas.mode == "inline" else None,
            secret_env=secret_env,
            debug=self.debug,
            warn=console.warn,
        )
        return TerraformRunner(
            self.terraform_binary(),
            env.root_dir,
            child,
            out=console.line,
            err=console.stderr_line,
            lock_seed=lock_seed,
        )


def plugin_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """Providers are downloaded once per machine, not once per environment."""
    if environ.get("TF_PLUGIN_CACHE_DIR"):
        return Path(environ["TF_PLUGIN_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or (str(Path(environ.get("HOME", "/tmp")) / ".cache"))
    path = Path(base) / "dlz-provisioner" / "plugins"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


@contextmanager
def open_context(args: Any, console: Console) -> Iterator[RunContext]:
    """Load the config and, with --sandbox, run the emulators for the duration of the command."""
    environ = dict(os.environ)
    from provisioner.terraform.binary import prefetch

    prefetch(environ)  # overlaps `terraform version` with the config and credential steps
    config = load_config(args.config, environ={} if args.sandbox else environ)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not args.sandbox:
        yield RunContext(config, console, environ, debug=args.debug, interactive=interactive)
        return
    from provisioner.sandbox import Sandbox

    envs = list(config.environments.values())
    first = envs[0].aep
    with Sandbox(
        sandbox_dir(config.path, environ),
        workspace_hosts=sorted({e.databricks_host for e in envs}),
        client_id=first.client_id,
        org_id=first.org_id,
        client_secret=environ.get("AEP_CLIENT_SECRET") or None,
        databricks_token=environ.get("DATABRICKS_TOKEN") or None,
    ) as sandbox:
        # Environments may use API clients of their own (an IMS client belongs to one org).
        for env in envs:
            if env.aep.client_id != first.client_id:
                sandbox.aep.register_client(env.aep.client_id, sandbox.client_secret.reveal(), env.aep.org_id)
        announcement = sandbox.dlz_announcement()
        if announcement:
            console.info(announcement)

        # Our own workspace and storage calls resolve hosts through the same maps as Terraform's.
        routing = sandbox.routing_env()
        previous = {name: os.environ.get(name) for name in routing}
        os.environ.update(routing)
        try:
            yield RunContext(config, console, environ, debug=args.debug, sandbox=sandbox, interactive=interactive)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def sandbox_dir(config_path: Path, environ: Mapping[str, str]) -> Path:
    if environ.get("PROVISION_SANDBOX_DIR"):
        return Path(environ["PROVISION_SANDBOX_DIR"])
    return config_path.resolve().parent / ".provision" / "sandbox"


# ---- steps ------------------------------------------------------------------------------


def fetch_credentials(ctx: RunContext, env: Environment, *, render_next: bool = True) -> DlzCredentials:
    """The DLZ credentials; with `render_next`, render's set-up runs while IMS and AEP answer."""
    client = ctx.aep_client(env)
    if render_next:
        from provisioner.render import warm
        from provisioner.warmup import in_background

        in_background(warm)
    return client.get_credentials()


def render_env(ctx: RunContext, env: Environment, creds: DlzCredentials, write: bool = True) -> RenderedRoot:
    from provisioner.render import DlzTarget, render_root, write_root

    env = with_policies(ctx, env)
    rendered = render_root(env, DlzTarget(creds.container_name, creds.storage_account_name), ctx.config.path)
    if write:
        written = write_root(rendered)
        if written:
            ctx.console.info(f"rendered {_display(env.root_dir)}: {', '.join(written)}")
    return rendered


def with_policies(ctx: RunContext, env: Environment) -> Environment:
    """The clusters as their cluster policies make them (provisioner.policies); fails on a conflict."""
    if not any(c.policy_id for c in env.clusters):
        return env
    from provisioner.policies import apply_policies, fetch_policies

    return apply_policies(env, fetch_policies(ctx.workspace_client(env), env))


def default_plan_file(env: Environment) -> Path:
    return env.root_dir / ".terraform" / PLAN_FILE_NAME


def init_env(
    ctx: RunContext,
    env: Environment,
    runner: TerraformRunner,
    console: Console | None = None,
    *,
    init: InitOptions | None = None,
    init_lock: AbstractContextManager[Any] | None = None,
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
            if env.backend.type == "pg":
                from provisioner.terraform.state import create_empty_state

                # Else this root's first plan would hold pg's database-wide creation lock.
                if create_empty_state(runner):
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
    init_lock: AbstractContextManager[Any] | None = None,
) -> ExitCode:
    """init (see init_env) → plan -out (0600): ExitCode.NO_CHANGES or ExitCode.CHANGES.

    `lock_timeout` is how long to wait for another run's state lock (Terraform's default of
    0s fails at once).
    """
    from provisioner.terraform import PlanOptions

    runner = ctx.runner(env, creds.sas_token, console)
    init_env(ctx, env, runner, console, init=init, init_lock=init_lock)
    return runner.plan(PlanOptions(out=plan_file, lock_timeout=lock_timeout))


def read_env_state(ctx: RunContext, env: Environment) -> TerraformState:
    """The environment's Terraform state, read quietly (init first when needed; nothing for a
    root never rendered). Terraform's chatter would be noise in a report and break --json."""
    from provisioner.terraform import read_state

    quiet = Console(ctx.console.out, ctx.console.err, color=ctx.console.color, quiet=True)
    return read_state(ctx.runner(env, sas=None, console=quiet))


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


def require(value: Any, message: str) -> Any:
    if value is None:
        raise ConfigError(message)
    return value
