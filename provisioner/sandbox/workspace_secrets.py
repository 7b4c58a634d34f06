"""Secret scopes, secrets, their ACLs, cluster policies and PATs: the workspace endpoints
whose semantics live in the store (store/secrets.py, store/acls.py, store/policies.py,
store/identities.py; sources in their docstrings)."""

from __future__ import annotations

from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.store.policies import POLICY_FIELDS
from provisioner.sandbox.workspace_common import Body, Endpoint, caller, required


class SecretEndpoints:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store

    def endpoints(self) -> dict[str, tuple[str, Endpoint]]:
        return {
            "policies/clusters/get": ("GET", self._get_policy),
            "policies/clusters/list": ("GET", self._list_policies),
            "policies/clusters/create": ("POST", self._create_policy),
            "policies/clusters/edit": ("POST", self._edit_policy),
            "policies/clusters/delete": ("POST", self._delete_policy),
            "secrets/scopes/create": ("POST", self._create_scope),
            "secrets/scopes/delete": ("POST", self._delete_scope),
            "secrets/scopes/list": ("GET", self._list_scopes),
            "secrets/put": ("POST", self._put_secret),
            "secrets/delete": ("POST", self._delete_secret),
            "secrets/list": ("GET", self._list_secrets),
            "secrets/get": ("GET", self._get_secret),
            "secrets/acls/list": ("GET", self._list_acls),
            "secrets/acls/get": ("GET", self._get_acl),
            "secrets/acls/put": ("POST", self._put_acl),
            "secrets/acls/delete": ("POST", self._delete_acl),
            "token/create": ("POST", self._create_token),
            "token/list": ("GET", self._list_tokens),
            "token/delete": ("POST", self._delete_token),
        }

    # ---- cluster policies (store/policies.py has the semantics and sources) ----------------

    def _get_policy(self, ws: str, body: Body) -> Body:
        return self.store.get_policy(ws, required(body, "policy_id"))

    def _list_policies(self, ws: str, body: Body) -> Body:
        policies = self.store.list_policies(ws)
        return {"policies": policies, "total_count": len(policies)} if policies else {"total_count": 0}

    def _create_policy(self, ws: str, body: Body) -> Body:
        definition = body.get("definition") or "{}"
        fields = {k: body[k] for k in POLICY_FIELDS if body.get(k) not in (None, "")}
        return {"policy_id": self.store.create_policy(ws, required(body, "name"), str(definition), fields=fields)}

    def _edit_policy(self, ws: str, body: Body) -> Body:
        # EditPolicy replaces the policy's fields (databricks-sdk-py `ClusterPoliciesAPI.edit`).
        fields = {k: body.get(k) for k in POLICY_FIELDS}
        self.store.edit_policy(
            ws, required(body, "policy_id"), str(body.get("definition") or "{}"), name=body.get("name"), fields=fields
        )
        return {}

    def _delete_policy(self, ws: str, body: Body) -> Body:
        self.store.delete_policy(ws, required(body, "policy_id"))
        return {}

    # ---- secrets ---------------------------------------------------------------------------

    def _create_scope(self, ws: str, body: Body) -> Body:
        self.store.create_scope(
            ws,
            required(body, "scope"),
            body.get("scope_backend_type") or "DATABRICKS",
            creator=caller()["userName"],
            initial_manage_principal=body.get("initial_manage_principal"),
        )
        return {}

    def _delete_scope(self, ws: str, body: Body) -> Body:
        self.store.delete_scope(ws, required(body, "scope"))
        return {}

    def _list_scopes(self, ws: str, body: Body) -> Body:
        scopes = self.store.list_scopes(ws)
        return {"scopes": scopes} if scopes else {}

    def _put_secret(self, ws: str, body: Body) -> Body:
        value = body.get("string_value")
        if value is None and "bytes_value" in body:
            value = str(body["bytes_value"])
        if not isinstance(value, str):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Either string_value or bytes_value is required")
        self.store.put_secret(ws, required(body, "scope"), required(body, "key"), value)
        return {}

    def _delete_secret(self, ws: str, body: Body) -> Body:
        self.store.delete_secret(ws, required(body, "scope"), required(body, "key"))
        return {}

    # ---- secret scope ACLs (store/acls.py) ------------------------------------------------

    def _list_acls(self, ws: str, body: Body) -> Body:
        acls = self.store.scope_acls(ws, required(body, "scope"))
        items = [{"principal": p, "permission": perm} for p, perm in sorted(acls.items())]
        return {"items": items} if items else {}

    def _get_acl(self, ws: str, body: Body) -> Body:
        scope, principal = required(body, "scope"), required(body, "principal")
        acls = self.store.scope_acls(ws, scope)
        if principal not in acls:
            raise DatabricksError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Failed to get secret ACL for {principal} in {scope}"
            )
        return {"principal": principal, "permission": acls[principal]}

    def _put_acl(self, ws: str, body: Body) -> Body:
        self.store.put_scope_acl(ws, required(body, "scope"), required(body, "principal"), required(body, "permission"))
        return {}

    def _delete_acl(self, ws: str, body: Body) -> Body:
        self.store.delete_scope_acl(ws, required(body, "scope"), required(body, "principal"))
        return {}

    def _get_secret(self, ws: str, body: Body) -> Body:
        """Only DBUtils in a notebook reads a value back: databricks-sdk-py `SecretsAPI.get_secret`,
        "Throws ``BAD_REQUEST`` if normal user calls get secret outside of a notebook". The
        sandbox runs no notebook, so every caller gets it (the message is ours: the source
        gives only the code)."""
        raise DatabricksError(
            400, "BAD_REQUEST", "Secret values can only be read with dbutils.secrets.get in a notebook or job."
        )

    def _list_secrets(self, ws: str, body: Body) -> Body:
        listed = self.store.list_secrets(ws, required(body, "scope"))
        return {"secrets": listed} if listed else {}

    # ---- tokens ---------------------------------------------------------------------------

    def _create_token(self, ws: str, body: Body) -> Body:
        """Token API `create` (SDK `service/settings.py` `TokensAPI.create`; store/tokens.py)."""
        lifetime = body.get("lifetime_seconds")
        if lifetime is not None and not isinstance(lifetime, int):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "lifetime_seconds must be an integer")
        token, info = self.store.create_pat(caller()["id"], str(body.get("comment") or ""), lifetime)
        return {"token_value": token, "token_info": info}

    def _list_tokens(self, ws: str, body: Body) -> Body:
        infos = self.store.list_pats(caller()["id"])
        return {"token_infos": infos} if infos else {}

    def _delete_token(self, ws: str, body: Body) -> Body:
        self.store.delete_pat(caller()["id"], required(body, "token_id"))
        return {}
