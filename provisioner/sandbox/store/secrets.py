"""Databricks secret scopes and secrets (values are stored; the API never returns them).

Semantics from databricks-sdk-py `service/workspace.py` (`SecretsAPI`):
- `put_secret` overwrites an existing secret's value in place ("If a secret already exists
  with the same name, this command overwrites the existing secret's value") — one atomic
  write, so a reader sees the old value or the new one, never none;
- it "Throws BAD_REQUEST if request is made against Azure KeyVault backed scope" (such a
  scope is read-only through Databricks: its secrets live in the Key Vault);
- `scope_backend_type` is `DATABRICKS` or `AZURE_KEYVAULT` (`ScopeBackendType`). The real
  API needs `backend_azure_keyvault` metadata and an Entra ID token to create the latter;
  the sandbox lets a test seed one with the backend type alone.
"""

from __future__ import annotations

import re
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, StoreBase, now_ms, workspace_state
from provisioner.sandbox.store.clusters import SANDBOX_USER

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
KEY_VAULT = "AZURE_KEYVAULT"
_BACKENDS = frozenset({"DATABRICKS", KEY_VAULT})


class SecretStore(StoreBase):
    def create_scope(
        self,
        workspace_key: str,
        scope: str,
        backend_type: str = "DATABRICKS",
        *,
        creator: str = SANDBOX_USER,
        initial_manage_principal: str | None = None,
    ) -> None:
        """The creator gets MANAGE, or every user with `initial_manage_principal = "users"` (store/acls.py)."""
        if initial_manage_principal not in (None, "", "users"):
            raise DatabricksError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"initial_manage_principal must be 'users' (got {initial_manage_principal!r})",
            )
        if not isinstance(scope, str) or not _NAME_RE.match(scope):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid scope name: {scope!r}")
        if backend_type not in _BACKENDS:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid scope backend type: {backend_type!r}")
        if initial_manage_principal not in (None, "", "users"):
            raise DatabricksError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"initial_manage_principal must be 'users' (got {initial_manage_principal!r})",
            )
        with self._txn() as state:
            scopes = workspace_state(state, workspace_key)["scopes"]
            if scope in scopes:
                raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!")
            manager = "users" if initial_manage_principal == "users" else creator
            scopes[scope] = {"backend_type": backend_type, "secrets": {}, "acls": {manager: "MANAGE"}}

    def delete_scope(self, workspace_key: str, scope: str) -> None:
        with self._txn() as state:
            scopes = workspace_state(state, workspace_key)["scopes"]
            _scope(scopes, scope)
            del scopes[scope]

    def list_scopes(self, workspace_key: str) -> list[dict[str, str]]:
        with self._txn() as state:
            scopes = workspace_state(state, workspace_key)["scopes"]
            return [{"name": n, "backend_type": s["backend_type"]} for n, s in sorted(scopes.items())]

    def put_secret(self, workspace_key: str, scope: str, key: str, value: str) -> None:
        if not isinstance(key, str) or not _NAME_RE.match(key):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid secret key: {key!r}")
        with self._txn() as state:
            entry = _scope(workspace_state(state, workspace_key)["scopes"], scope)
            if entry["backend_type"] == KEY_VAULT:
                raise DatabricksError(
                    400, "BAD_REQUEST", f"Scope {scope} is backed by Azure KeyVault; secrets can only be read."
                )
            # The secrets service keeps its own clock: the skew knob makes its timestamps
            # disagree with the clusters service's `last_restarted_time`, as two services can.
            skew_ms = int(float(state["faults"].get("workspace.secrets_clock_skew_seconds") or 0) * 1000)
            entry["secrets"][key] = {"value": value, "last_updated_timestamp": now_ms() + skew_ms}

    def delete_secret(self, workspace_key: str, scope: str, key: str) -> None:
        with self._txn() as state:
            entry = _scope(workspace_state(state, workspace_key)["scopes"], scope)
            if key not in entry["secrets"]:
                raise DatabricksError(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Secret does not exist with scope: {scope} and key: {key}",
                )
            del entry["secrets"][key]

    def list_secrets(self, workspace_key: str, scope: str) -> list[dict[str, Any]]:
        """Keys and timestamps only: Databricks never gives values back."""
        with self._txn() as state:
            entry = _scope(workspace_state(state, workspace_key)["scopes"], scope)
            return [
                {"key": k, "last_updated_timestamp": s["last_updated_timestamp"]}
                for k, s in sorted(entry["secrets"].items())
            ]

    def secret_value(self, workspace_key: str, scope: str, key: str) -> str | None:
        """Test helper (there is no such API): what a cluster would resolve right now."""
        with self._txn() as state:
            scope_entry = workspace_state(state, workspace_key)["scopes"].get(scope, {})
            secret = scope_entry.get("secrets", {}).get(key)
            return None if secret is None else secret["value"]


def _scope(scopes: dict[str, Any], scope: str) -> dict[str, Any]:
    if scope not in scopes:
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
    entry: dict[str, Any] = scopes[scope]
    return entry
