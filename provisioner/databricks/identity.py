"""Which Databricks identity a run uses: databricks-sdk's unified auth, resolved once.

The Terraform provider and databricks-sdk share Databricks' "unified auth": the same
environment variables, the same precedence and the same conflict rule — attributes of two
auth families (say `ARM_CLIENT_*` for the azurerm backend and `DATABRICKS_TOKEN`) make both
refuse with "validate: more than one authorization method configured: azure and pat"
unless an auth type is pinned (databricks-sdk-py `databricks/sdk/config.py` `_validate`,
`credentials_provider.py` `DefaultCredentials`; provider `internal/providers/providers_test.go`,
`docs/guides/troubleshooting.md`, `docs/index.md` `auth_type`). So the tool resolves the
identity with the SDK's own `Config`, then gives Terraform the same identity with its auth
type pinned (`DATABRICKS_AUTH_TYPE` in the child environment): whatever else is exported,
both sides use one principal.

Managed identities (`azure-msi`, `ARM_USE_MSI`) are the one method the provider has and the
tool cannot use: databricks-sdk-py has no such credentials strategy (its
`credentials_provider.py` registers none; databricks-sdk-go has `config/auth_azure_msi.go`),
so `Config(auth_type="azure-msi")` fails "cannot configure default credentials". The tool's
own calls (SCIM, secrets, restarts) would fail while Terraform's worked, so the method is not
offered (provision.schema.json) and a run that asks for it gets one line naming what to use.

One choice where the rule would only get in the way: when the conflict is between Azure
attributes and one Databricks-specific method (`pat` or `oauth-m2m`), CI almost always
exports `ARM_*` for the azurerm state backend, so the Databricks-specific method is pinned
and the run says so. Any other conflict is an error naming the fix.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.clock import Clock, RealClock
from provisioner.config.model import AuthSettings
from provisioner.databricks.parallel import MAX_PARALLEL_LIMIT
from provisioner.databricks.ratelimit import pace
from provisioner.databricks.sdk import Workspace, load
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
from provisioner.errors import ConfigError
from provisioner.secret import Secret, mask

if TYPE_CHECKING:
    from databricks.sdk.config import Config

    from provisioner.databricks.workspace import WorkspaceClient

AUTH_TYPE_ENV = "DATABRICKS_AUTH_TYPE"
PROFILE_ENV = "DATABRICKS_CONFIG_PROFILE"
# How long the SDK keeps retrying 429/503 and connection failures of one call.
RETRY_BUDGET_SECONDS = 120

_CONFLICT_RE = re.compile(r"more than one authorization method configured: ([a-z\- ]+)")
# A conflict of Azure attributes with one of these is resolved by pinning the latter.
_DATABRICKS_FAMILIES = {"pat": "pat", "oauth": "oauth-m2m"}


@dataclass(frozen=True)
class Identity:
    """Who the run acts as in one workspace."""

    host: str
    auth_type: str
    user_name: str  # e-mail, or a service principal's application id
    display_name: str
    groups: tuple[str, ...] = ()
    note: str = ""

    @property
    def principal(self) -> str:
        return self.display_name or self.user_name

    @property
    def is_admin(self) -> bool:
        """A member of the workspace's `admins` group (SCIM `Me` lists the caller's own groups)."""
        return "admins" in self.groups

    def describe(self) -> str:
        return f"{self.principal} ({self.auth_type})"

    def as_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "userName": self.user_name,
            "authType": self.auth_type,
            "admin": self.is_admin,
        }

    def terraform_env(self, settings: AuthSettings) -> dict[str, str]:
        return AuthPin(self.auth_type).terraform_env(settings)


@dataclass(frozen=True)
class AuthPin:
    """What pins Terraform's provider to the run's identity: its auth type."""

    auth_type: str

    def terraform_env(self, settings: AuthSettings) -> dict[str, str]:
        """The child environment's pin (no secret: those it inherits)."""
        env = {AUTH_TYPE_ENV: self.auth_type}
        if settings.profile:
            env[PROFILE_ENV] = settings.profile
        return env


@dataclass(frozen=True)
class OpenedWorkspace:
    """A client on the identity databricks-sdk resolved for a workspace, not yet proven.

    Resolution is local but for the SDK's host-metadata request (`GET
    /.well-known/databricks-config`, made by every `Config` with a host: databricks-sdk-py
    `databricks/sdk/config.py` `_resolve_host_metadata`); proving it (`prove`, SCIM `Me`) is
    one more round trip, which reads that need no identity can overlap."""

    client: WorkspaceClient
    host: str
    auth_type: str
    note: str = ""


def predicted_auth_type(settings: AuthSettings, environ: Mapping[str, str], supplied: Iterable[str] = ()) -> str | None:
    """The auth type `sdk_config` will resolve, guessed from the configuration alone (no import,
    no request), when it leaves one choice: an auth type set explicitly, or a PAT or an OAuth M2M
    secret but not both (Azure attributes beside either are pinned away, see the module's
    docstring). `supplied`: the environment names of credentials the target adds.

    The order it mirrors is `DefaultCredentials` (databricks-sdk-py `credentials_provider.py`:
    `pat` before `oauth-m2m`, after `_validate` refused a mix of methods). A guess to start
    Terraform early (provisioner.operations.plan_ahead): whoever uses it compares it with the resolved
    auth type before anything Terraform did with it counts. A profile is not guessed (its
    file decides, `config.py` `_known_file_config_loader`)."""
    if settings.profile or environ.get(PROFILE_ENV):
        return None
    explicit = settings.auth_type or environ.get(AUTH_TYPE_ENV)
    if explicit:
        return explicit
    present = {name for name, value in environ.items() if value} | set(supplied)
    pat = "DATABRICKS_TOKEN" in present
    m2m = {"DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"} <= present
    if pat != m2m:
        return "pat" if pat else "oauth-m2m"
    return None


def quiet_sdk_logging() -> None:
    """The SDK logs warnings (and, at debug level, request dumps) through `logging`: keep
    them out of our output, which is masked line by line and must stay one line per error."""
    logger = logging.getLogger("databricks.sdk")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.ERROR)


def register_secrets(environ: Mapping[str, str]) -> None:
    """Mask every sensitive unified-auth attribute found in the environment."""

    load()
    from databricks.sdk.config import Config

    for attr in Config.attributes():
        if attr.sensitive and attr.env and environ.get(attr.env):
            Secret(environ[attr.env])


def sdk_config(
    url: str, settings: AuthSettings, supplied: Mapping[str, Secret] | None = None, clock: Clock | None = None
) -> tuple[Config, str]:
    """The SDK's Config for `url`, resolved from the environment as the provider would, and
    a note when the tool had to pin the auth type itself.

    `supplied` are credentials the target adds under their environment names (the sandbox's
    throwaway PAT); `clock` is what the SDK's retries sleep on (default: the SDK's own). Raises
    ConfigError (one line, masked) when no identity or an ambiguous one is configured.
    """

    load()
    from databricks.sdk.config import Config

    quiet_sdk_logging()
    kwargs: dict[str, Any] = {
        "host": url,
        "retry_timeout_seconds": RETRY_BUDGET_SECONDS,
        # The SDK's pool holds 20 connections and blocks beyond (`_base_client.py`, where this
        # attribute sets `pool_maxsize`): sized for the most calls `databricks.max_parallel` allows.
        "max_connection_pools": MAX_PARALLEL_LIMIT,
    }
    if clock is not None:
        kwargs["clock"] = clock
    by_env = {a.env: a.name for a in Config.attributes() if a.env}
    for name, value in (supplied or {}).items():
        kwargs[by_env[name]] = value.reveal()
    if settings.auth_type:
        kwargs["auth_type"] = settings.auth_type
    if settings.profile:
        kwargs["profile"] = settings.profile
    asked = settings.auth_type or os.environ.get(AUTH_TYPE_ENV)
    if asked == MSI:
        raise ConfigError(_msi_error(url))
    try:
        return Config(**kwargs), ""
    except ValueError as exc:
        families = _conflict(str(exc))
        if not families and "cannot configure default credentials" in str(exc) and _msi_requested(os.environ):
            raise ConfigError(_msi_error(url)) from None
        pinned = _databricks_side(families)
        if pinned is None or "auth_type" in kwargs:
            raise ConfigError(_auth_error(url, exc, families)) from None
    try:
        config = Config(**{**kwargs, "auth_type": pinned})
    except ValueError as exc:
        raise ConfigError(_auth_error(url, exc, ())) from None
    return config, f"ARM_* are set too (for the azurerm backend): Databricks auth pinned to {pinned}"


def open_workspace(
    host: str,
    url: str,
    settings: AuthSettings,
    supplied: Mapping[str, Secret] | None = None,
    clock: Clock | None = None,
) -> OpenedWorkspace:
    """Resolve the identity for `host` (served at `url`) and open a client on it; no call of ours yet.

    `clock` (the run's) is what our pacing and waits read and what the SDK's own retries (429
    `Retry-After`, 5xx) sleep on: `Config(clock=…)` (databricks-sdk-py `config.py`, taken by
    `_base_client.py`'s `retried(clock=…)`); ours has the SDK's `time`/`sleep`.
    """

    clock = clock or RealClock()
    config, note = sdk_config(url, settings, supplied, clock)
    workspace = Workspace(config)
    if config.rate_limit:  # the workspace's limit, as the user gave it to the SDK
        pace(workspace.api_client, float(config.rate_limit), clock)
    return OpenedWorkspace(WorkspaceClient(workspace, host, clock), host, str(config.auth_type), note)


def prove(opened: OpenedWorkspace) -> Identity:
    """Who the opened client is (SCIM `Me`); a refused or unreachable login is one ConfigError."""

    try:
        me = opened.client.current_user()
    except WorkspaceError as exc:
        hint = (
            "the credentials were refused — check they belong to this workspace and have not expired"
            if exc.status in (401, 403)
            else "is the workspace reachable?"
        )
        raise ConfigError(
            f"Databricks {opened.host}: {opened.auth_type} authentication failed ({exc.message}) — {hint}"
        ) from None
    return Identity(
        host=opened.host,
        auth_type=opened.auth_type,
        user_name=str(me.get("userName") or me.get("id") or ""),
        display_name=str(me.get("displayName") or ""),
        groups=tuple(sorted(str(g.get("display")) for g in me.get("groups", []) if g.get("display"))),
        note=opened.note,
    )


def connect(
    host: str,
    url: str,
    settings: AuthSettings,
    supplied: Mapping[str, Secret] | None = None,
    clock: Clock | None = None,
) -> tuple[WorkspaceClient, Identity]:
    """Resolve the identity for `host` (served at `url`) and prove it authenticates (SCIM Me)."""
    opened = open_workspace(host, url, settings, supplied, clock)
    return opened.client, prove(opened)


MSI = "azure-msi"


def _msi_requested(environ: Mapping[str, str]) -> bool:
    return environ.get("ARM_USE_MSI", "").strip().lower() in ("1", "true", "yes")


def _msi_error(url: str) -> str:
    return (
        "Databricks auth: a managed identity (azure-msi / ARM_USE_MSI) cannot be used — provision's own calls "
        "go through databricks-sdk for Python, which has no managed-identity method (only the Terraform "
        "provider's Go SDK has); use an Entra ID service principal (ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID), "
        "OIDC federation (github-oidc-azure) or Databricks OAuth M2M; see README 'Databricks authentication'"
    )


def _conflict(message: str) -> tuple[str, ...]:
    match = _CONFLICT_RE.search(message)
    return tuple(match.group(1).strip().split(" and ")) if match else ()


def _databricks_side(families: tuple[str, ...]) -> str | None:
    if len(families) != 2 or "azure" not in families:
        return None
    (other,) = [f for f in families if f != "azure"]
    return _DATABRICKS_FAMILIES.get(other)


def _auth_error(url: str, exc: ValueError, families: tuple[str, ...]) -> str:
    first = mask(str(exc).split(". Config:")[0].split(". Env:")[0].strip())
    if families:
        return (
            f"Databricks auth: {first} — set databricks.auth_type in provision.yaml "
            f"(or {AUTH_TYPE_ENV}) to the one to use, or unset the other's variables"
        )
    if "cannot configure default credentials" in first or "not configured" in first:
        return (
            "Databricks auth: no credentials found — export DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET "
            "(OAuth M2M), ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID (Entra ID service principal), "
            "run `az login` (azure-cli), or DATABRICKS_TOKEN; see README 'Databricks authentication'"
        )
    return f"Databricks auth: {first} — see README 'Databricks authentication'"
