"""Secret scope ACLs: READ < WRITE < MANAGE per principal, kept on the scope (`scope["acls"]`).

Databricks REST reference "Secret ACL" (`/api/2.0/secrets/acls/list|get|put|delete`);
provider `secrets/resource_secret_acl.go`, `docs/resources/secret_acl.md`. A scope's
creator gets MANAGE, or every user (`users`) with `initial_manage_principal = "users"` —
the only other value the API accepts (`docs/resources/secret_scope.md`). Who may call the
ACL API (MANAGE) is the identity layer's business, not this module's.
"""

from __future__ import annotations

from typing import Any

from provisioner.sandbox.store.base import DatabricksError, StoreBase, workspace_state

PERMISSIONS = ("READ", "WRITE", "MANAGE")


class AclStore(StoreBase):
    def scope_acls(self, workspace_key: str, scope: str) -> dict[str, str]:
        with self._txn() as state:
            return dict(_scope(state, workspace_key, scope).get("acls") or {})

    def put_scope_acl(self, workspace_key: str, scope: str, principal: str, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid permission {permission!r}")
        with self._txn() as state:
            _scope(state, workspace_key, scope).setdefault("acls", {})[principal] = permission

    def delete_scope_acl(self, workspace_key: str, scope: str, principal: str) -> None:
        with self._txn() as state:
            acls = _scope(state, workspace_key, scope).setdefault("acls", {})
            if principal not in acls:
                raise DatabricksError(
                    404, "RESOURCE_DOES_NOT_EXIST", f"Failed to delete ACL for {principal} in scope {scope}"
                )
            del acls[principal]


def _scope(state: dict[str, Any], workspace_key: str, scope: str) -> dict[str, Any]:
    scopes = workspace_state(state, workspace_key)["scopes"]
    if scope not in scopes:
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
    entry: dict[str, Any] = scopes[scope]
    return entry
