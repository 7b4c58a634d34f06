"""secret_scope mode: the tool owns the SAS secret's value; Terraform owns the structure.

Terraform manages the scope (unless `sas.manage_scope: false`) and the clusters carrying the
literal `{{secrets/<scope>/<key>}}` reference; the value is written here with
`POST /api/2.0/secrets/put`, which overwrites an existing secret in place ("If a secret
already exists with the same name, this command overwrites the existing secret's value" —
databricks-sdk-py `service/workspace.py` `SecretsAPI.put_secret`). A cluster that starts at
any instant therefore resolves a secret: the old value or the new one, never none. The
provider's `databricks_secret` (`secrets/resource_secret.go`) has no update — every
attribute is ForceNew, so a new value is `secrets/delete` then `secrets/put`, a gap — and it
keeps `string_value` in state and in every saved plan. Neither happens here.

Freshness (`SecretFreshness`). Databricks never gives a value back to an API client
(`secrets/get` "can only be called from the DBUtils interface", same file), so the write
leaves a fingerprint beside it: a key `<key>.fp-<16 hex of sha256(token)>` whose *name* `secrets/list` returns with its
`last_updated_timestamp`. The value holds AEP's current token when the newest fingerprint
key names it and is not older than the value itself. A 64-bit prefix of a hash of a token
carrying a 256-bit signature reveals nothing usable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ProvisionError
from provisioner.secret import Secret

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config.model import Environment
    from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
    from provisioner.terraform import TerraformState

SCOPE_ADDRESS = "databricks_secret_scope.dlz"
LEGACY_SECRET_ADDRESS = "databricks_secret.dlz_sas_token"
FINGERPRINT_MARK = ".fp-"
_PROBE_SUFFIX = ".dlz-provisioner-write-check"
KEY_VAULT = "AZURE_KEYVAULT"


def fingerprint(token: Secret) -> str:
    return hashlib.sha256(token.reveal().encode("utf-8")).hexdigest()[:16]


def fingerprint_key(key: str, token: Secret) -> str:
    return f"{key}{FINGERPRINT_MARK}{fingerprint(token)}"


@dataclass(frozen=True)
class SecretFreshness:
    """What the workspace says about the SAS secret, compared with AEP's current token."""

    scope: str
    key: str
    updated_ms: int | None  # the value's last_updated_timestamp; None: no such secret
    holds_current: bool | None  # None: cannot tell (no fingerprint, or rewritten outside the tool)
    rewritten_outside: bool = False

    @property
    def present(self) -> bool:
        return self.updated_ms is not None

    @property
    def last_updated(self) -> str | None:
        if not self.updated_ms:
            return None
        return dt.datetime.fromtimestamp(self.updated_ms / 1000, dt.UTC).isoformat(timespec="seconds")

    def describe(self) -> str:
        where = f"secret {self.scope}/{self.key}"
        if not self.present:
            return f"{where}: missing — apply writes it"
        written = f"written {self.last_updated}"
        if self.holds_current:
            return f"{where}: holds AEP's current token ({written})"
        if self.rewritten_outside:
            return f"{where}: rewritten outside the tool ({written}) — apply writes AEP's current token"
        if self.holds_current is None:
            return f"{where}: not written by this tool ({written}) — apply writes AEP's current token"
        return f"{where}: holds an older token ({written}) — apply writes the current one and restarts running clusters"


def read_freshness(client: WorkspaceClient, env: Environment, creds: DlzCredentials) -> SecretFreshness:
    return judge_freshness(list_scope(client, env), env, creds)


def list_scope(client: WorkspaceClient, env: Environment) -> dict[str, int]:
    """The scope's keys and when each was written (ms); empty when the scope does not exist.

    One call, which needs no AEP token: `status` makes it while AEP answers.
    """
    return _list(client, env.sas.secret_scope)


def judge_freshness(listed: Mapping[str, int], env: Environment, creds: DlzCredentials) -> SecretFreshness:
    """What `list_scope`'s answer says about the value, compared with AEP's current token."""
    scope, key = env.sas.secret_scope, env.sas.secret_key
    value_ms = listed.get(key)
    if value_ms is None:
        return SecretFreshness(scope, key, None, False)
    marks = {k[len(key) + len(FINGERPRINT_MARK) :]: ms for k, ms in listed.items() if _is_fingerprint_key(k, key)}
    if not marks:
        return SecretFreshness(scope, key, value_ms, None)
    newest = max(marks, key=lambda fp: marks[fp])
    if value_ms > marks[newest]:
        return SecretFreshness(scope, key, value_ms, None, rewritten_outside=True)
    return SecretFreshness(scope, key, value_ms, newest == fingerprint(creds.sas_token))


def write_secret(
    client: WorkspaceClient, env: Environment, creds: DlzCredentials, listed: Mapping[str, int] | None = None
) -> None:
    """Overwrite the value in place, then record its fingerprint and drop older ones (see
    `record_fingerprint` for `listed`)."""
    put_value(client, env, creds)
    record_fingerprint(client, env, creds, listed=listed)


def put_value(client: WorkspaceClient, env: Environment, creds: DlzCredentials) -> None:
    """Only the in-place overwrite (one call): what a rotation's window needs before the restarts.

    Until `record_fingerprint` follows, the value is newer than its fingerprint and reads as
    "rewritten outside the tool", which a `--resume` repairs by writing both again.
    """
    _put(client, env, env.sas.secret_key, creds.sas_token)


def record_fingerprint(
    client: WorkspaceClient, env: Environment, creds: DlzCredentials, *, listed: Mapping[str, int] | None = None
) -> None:
    """Say which token the value holds (alone: when it is known to hold it already).

    `listed`: the scope's listing the caller read already (a rotation's, before its window),
    whose older fingerprints are dropped; else the scope is listed here. One written since
    that listing stays behind harmlessly: only the newest fingerprint counts, and the next
    write drops it."""
    scope, key = env.sas.secret_scope, env.sas.secret_key
    mark = fingerprint_key(key, creds.sas_token)
    _put(client, env, mark, Secret(f"sha256 prefix of the value of {key}; written by dlz-provisioner, not a secret"))
    for other in listed if listed is not None else _list(client, scope):
        if _is_fingerprint_key(other, key) and other != mark:
            _delete_quietly(client, scope, other)


def ensure_current(
    client: WorkspaceClient, env: Environment, creds: DlzCredentials, *, listed: Mapping[str, int] | None = None
) -> SecretFreshness:
    """Write the secret unless it already holds AEP's current token; the freshness before.

    `listed`: the scope's listing the caller read already (else it is listed here)."""
    if listed is None:
        listed = list_scope(client, env)
    before = judge_freshness(listed, env, creds)
    if not before.holds_current:
        write_secret(client, env, creds, listed)
    return before


def probe_write(client: WorkspaceClient, env: Environment) -> None:
    """Prove WRITE on the scope without touching the value (rotate's pre-flight)."""
    probe = env.sas.secret_key + _PROBE_SUFFIX
    _put(client, env, probe, Secret("write check by dlz-provisioner; deleted at once"))
    _delete_quietly(client, env.sas.secret_scope, probe)


# ---- the scope: exists? managed here? writable backend? -----------------------------------


def scope_in_state(state: TerraformState) -> bool:
    return state.resource(*SCOPE_ADDRESS.split(".")) is not None


def legacy_secret_in_state(state: TerraformState) -> bool:
    """The layout before this one kept the token itself in state (databricks_secret)."""
    return state.resource(*LEGACY_SECRET_ADDRESS.split(".")) is not None


def check_scope(client: WorkspaceClient, env: Environment, state: TerraformState, *, must_exist: bool = False) -> bool:
    """Plan-time checks of `sas.secret_scope`, each failing as one line; True if it exists.

    - Azure Key Vault-backed: Databricks cannot write to it (`secrets/put` answers
      BAD_REQUEST "if request is made against Azure KeyVault backed scope", SDK `put_secret`);
    - `manage_scope: false`: the scope must exist;
    - managed: an existing scope that this environment's state does not hold belongs to
      someone else — creating it would fail mid-apply with RESOURCE_ALREADY_EXISTS, and
      importing it would let a destroy delete unrelated secrets.
    """

    name, where = env.sas.secret_scope, f"{env.name}: sas.secret_scope '{env.sas.secret_scope}'"
    try:
        scopes = {s.get("name"): s for s in client.list_scopes()}
    except WorkspaceError as exc:
        raise ProvisionError(f"{where}: cannot list the workspace's secret scopes ({exc.message})") from None
    scope = scopes.get(name)
    if scope is not None and scope.get("backend_type") == KEY_VAULT:
        raise ProvisionError(
            f"{where} is Azure Key Vault-backed, and Databricks cannot write secrets into it — name a "
            "Databricks-backed scope instead (or set sas.mode: inline)"
        )
    if env.sas.manage_scope:
        if scope is not None and not scope_in_state(state):
            raise ProvisionError(
                f"{where} already exists and is not managed by this environment — set sas.manage_scope: false "
                "to use it (the tool then writes its key and never deletes the scope), or choose another name"
            )
        if scope is None and must_exist:
            raise ProvisionError(f"{where} does not exist in {env.databricks_host} — run `provision apply` first")
    elif scope is None:
        raise ProvisionError(
            f"{where} does not exist in {env.databricks_host} and sas.manage_scope is false — create it "
            "(Databricks-backed) or set sas.manage_scope: true to let Terraform create it"
        )
    return scope is not None


def destroy_targets(state: TerraformState) -> tuple[str, ...]:
    """Every managed resource in the state but the protected scope (`provision destroy`)."""
    return tuple(sorted(a for a in state.addresses() if a != SCOPE_ADDRESS))


# ---- helpers ------------------------------------------------------------------------------


def _is_fingerprint_key(candidate: str, key: str) -> bool:
    return candidate.startswith(key + FINGERPRINT_MARK)


def _list(client: WorkspaceClient, scope: str) -> dict[str, int]:

    try:
        return {str(s["key"]): int(s.get("last_updated_timestamp") or 0) for s in client.list_secrets(scope)}
    except WorkspaceError as exc:
        if exc.not_found:
            return {}
        raise ProvisionError(f"cannot list the secrets of scope {scope} ({exc.message})") from None


def _put(client: WorkspaceClient, env: Environment, key: str, value: Secret) -> None:

    try:
        client.put_secret(env.sas.secret_scope, key, value)
    except WorkspaceError as exc:
        raise ProvisionError(_put_failure(env, key, exc)) from None


def _put_failure(env: Environment, key: str, exc: WorkspaceError) -> str:
    scope = env.sas.secret_scope
    if exc.not_found:
        fix = "run `provision apply` (a managed scope is created there) or create the scope"
    elif exc.bad_request:
        fix = "an Azure Key Vault-backed scope cannot be written through Databricks — name a Databricks-backed scope"
    elif exc.permission_denied:
        fix = f"grant the tool's principal WRITE (or MANAGE) on scope {scope}"
    else:
        fix = "check the workspace and try again"
    return f"cannot write secret {scope}/{key}: {exc.message} — {fix}"


def _delete_quietly(client: WorkspaceClient, scope: str, key: str) -> None:

    try:
        client.delete_secret(scope, key)
    except WorkspaceError as exc:
        if not exc.not_found:
            raise ProvisionError(f"cannot delete secret {scope}/{key} ({exc.message})") from None
