"""Workspace identities: users with PATs, service principals with OAuth M2M secrets, and
the permissions the workspace checks for them.

What is copied from reality, and where it is written down:
- A bearer token is either a PAT (`dapi…`) or an OAuth access token issued by the
  workspace's `/oidc/v1/token` for a service principal's client id + secret
  (client_credentials, `expires_in` seconds; databricks-sdk-py `databricks/sdk/oauth.py`
  `ClientCredentials`, `credentials_provider.py` `oauth_service_principal`).
- SCIM `Me` answers `userName` = the user's e-mail, or the service principal's
  application id, and `displayName` (databricks-sdk-py `service/iam.py` `User`).
- Cluster permission levels CAN_ATTACH_TO < CAN_RESTART < CAN_MANAGE; the creator gets
  CAN_MANAGE; members of `admins` can do everything (provider `docs/resources/permissions.md`,
  "Cluster usage"; SDK `service/iam.py` `PermissionLevel`).
- Secret scope ACLs READ < WRITE < MANAGE; the creator gets MANAGE unless
  `initial_manage_principal = "users"`; the ACL API itself needs MANAGE
  (Databricks REST reference "Secret ACL": acls/get, acls/list, acls/put, acls/delete;
  provider `docs/resources/secret_acl.md`, `docs/resources/secret_scope.md`).
- Reading a cluster's ACL (`GET /api/2.0/permissions/clusters/{id}`) needs CAN_MANAGE here,
  as in the workspace UI where only managers see a cluster's Permissions dialog.

Token values are stored as SHA-256 digests only: the state file never holds them.
The lifetime, listing and revocation of the PATs `token/create` mints: store/tokens.py.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State, StoreBase

OAUTH_TOKEN_SECONDS = 3600
CLUSTER_LEVELS = ("CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE")
SCOPE_LEVELS = ("READ", "WRITE", "MANAGE")
ADMINS = "admins"
USERS = "users"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _identities(state: State) -> dict[str, Any]:
    ids: dict[str, Any] = state.setdefault(
        "identities", {"principals": {}, "pats": {}, "oauth_clients": {}, "oauth_tokens": {}}
    )
    return ids


def principal_names(principal: dict[str, Any]) -> set[str]:
    """Every name an ACL entry may use for this principal: itself and its groups."""
    return {principal["userName"], *principal.get("groups", []), USERS}


def rank(levels: tuple[str, ...], level: str | None) -> int:
    return levels.index(level) + 1 if level in levels else 0


class IdentityStore(StoreBase):
    # ---- principals and their credentials ---------------------------------------------

    def add_user(self, user_name: str, token: str, *, admin: bool = True) -> dict[str, Any]:
        """A user with a PAT. Registering a known token again keeps the principal as it is."""
        with self._txn() as state:
            ids = _identities(state)
            known = ids["pats"].get(_digest(token))
            if known is not None:
                return dict(ids["principals"][known])
            principal = _principal(ids, user_name, user_name, "user", admin)
            ids["pats"][_digest(token)] = principal["id"]
            return dict(principal)

    def add_service_principal(
        self, application_id: str, secret: str, *, display_name: str | None = None, admin: bool = True
    ) -> dict[str, Any]:
        """A service principal with an OAuth secret; an existing one keeps its rights."""
        with self._txn() as state:
            ids = _identities(state)
            client = ids["oauth_clients"].get(application_id)
            if client is not None:
                client["secret"] = _digest(secret)
                return dict(ids["principals"][client["principal"]])
            name = display_name or f"sp-{application_id[:8]}"
            principal = _principal(ids, application_id, name, "service_principal", admin)
            ids["oauth_clients"][application_id] = {"secret": _digest(secret), "principal": principal["id"]}
            return dict(principal)

    def add_pat(self, principal_id: str, token: str) -> None:
        """A PAT the principal made for itself (`/api/2.0/token/create`)."""
        with self._txn() as state:
            _identities(state)["pats"][_digest(token)] = principal_id

    def revoke_pats(self) -> None:
        """Test knob: every PAT revoked, as workspace token management would revoke them
        (`DELETE /api/2.0/token-management/tokens/{token_id}`); later calls with one get 401."""
        with self._txn() as state:
            _identities(state)["pats"] = {}

    def set_admin(self, user_name: str, admin: bool) -> None:
        """Test knob: make a principal a workspace admin (member of `admins`) or not."""
        with self._txn() as state:
            principal = _by_name(_identities(state), user_name)
            groups = set(principal.get("groups", [])) - {ADMINS}
            principal["groups"] = sorted(groups | ({ADMINS} if admin else set()))

    def add_group_member(self, group: str, user_name: str) -> None:
        """Test knob: `user_name` joins workspace group `group` (an unknown name becomes a
        non-admin user without credentials, e.g. the owner of a cluster made before us)."""
        with self._txn() as state:
            ids = _identities(state)
            try:
                principal = _by_name(ids, user_name)
            except KeyError:
                kind = "user" if "@" in user_name else "service_principal"
                principal = ids["principals"][_principal(ids, user_name, user_name, kind, False)["id"]]
            principal["groups"] = sorted(set(principal.get("groups", [])) | {group})

    def find_principal(self, user_name: str) -> dict[str, Any] | None:
        """The principal whose userName (e-mail, or application id) this is (SCIM list filters)."""
        with self._txn() as state:
            for principal in _identities(state)["principals"].values():
                if principal["userName"] == user_name:
                    return dict(principal)
            return None

    def issue_oauth_token(self, client_id: str, client_secret: str) -> tuple[str, int] | None:
        """client_credentials: a fresh access token, or None for a wrong id or secret."""
        with self._txn() as state:
            ids = _identities(state)
            client = ids["oauth_clients"].get(client_id)
            if client is None or not secrets.compare_digest(client["secret"], _digest(client_secret)):
                return None
            token = "dose-sbx-" + secrets.token_urlsafe(32)
            now = time.time()
            ids["oauth_tokens"] = {k: v for k, v in ids["oauth_tokens"].items() if v["expires"] > now}
            ids["oauth_tokens"][_digest(token)] = {
                "principal": client["principal"],
                "expires": now + OAUTH_TOKEN_SECONDS,
            }
            return token, OAUTH_TOKEN_SECONDS

    def expire_oauth_tokens(self) -> None:
        """Test knob: every issued OAuth token is past its expiry (clients must fetch a new one)."""
        with self._txn() as state:
            for entry in _identities(state)["oauth_tokens"].values():
                entry["expires"] = 0

    def principal_for_token(self, token: str) -> dict[str, Any] | None:
        """Who a bearer token belongs to, or None (unknown, or an expired OAuth token)."""
        with self._txn() as state:
            ids = _identities(state)
            digest = _digest(token)
            pid = ids["pats"].get(digest)
            info = ids.get("pat_info", {}).get(digest)
            if pid is not None and info is not None and 0 <= info["expiry_time"] <= time.time() * 1000:
                return None  # past its expiry_time: the workspace refuses it (store/tokens.py)
            if pid is None:
                entry = ids["oauth_tokens"].get(digest)
                if entry is None or entry["expires"] <= time.time():
                    return None
                pid = entry["principal"]
            principal = ids["principals"].get(pid)
            # A deactivated principal cannot authenticate (SCIM `active: false`, store/directory.py).
            if principal is None or principal.get("active", True) is False:
                return None
            return dict(principal)

    # ---- cluster permissions -------------------------------------------------------------

    def cluster_level(self, workspace_key: str, cluster_id: str, principal: dict[str, Any]) -> str | None:
        """The principal's effective level on a cluster (admins: CAN_MANAGE)."""
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
            if cluster is None:
                return None
            return _effective(CLUSTER_LEVELS, cluster.get("acl", {}), principal)

    def cluster_levels(
        self, workspace_key: str, cluster_ids: list[str], principal: dict[str, Any]
    ) -> dict[str, str | None]:
        """`cluster_level` of many clusters in one transaction: a listing must not reread the
        state once per cluster (that made every `clusters/list` quadratic in the clusters)."""
        with self._view() as state:
            clusters = state["workspaces"].get(workspace_key, {}).get("clusters", {})
            return {
                cid: None
                if cid not in clusters
                else _effective(CLUSTER_LEVELS, clusters[cid].get("acl", {}), principal)
                for cid in cluster_ids
            }

    def cluster_acl(self, workspace_key: str, cluster_id: str) -> dict[str, str]:
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
            return dict((cluster or {}).get("acl", {}))

    def set_cluster_permission(self, workspace_key: str, cluster_id: str, name: str, level: str | None) -> None:
        """Grant (or with None revoke) a level on a cluster; CAN_MANAGE etc."""
        if level is not None and level not in CLUSTER_LEVELS:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid permission level {level}")
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
            if cluster is None:
                raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Cluster {cluster_id} does not exist")
            acl = cluster.setdefault("acl", {})
            if level is None:
                acl.pop(name, None)
            else:
                acl[name] = level

    def replace_cluster_acl(self, workspace_key: str, cluster_id: str, acl: dict[str, str]) -> None:
        """`PUT permissions/clusters/{id}`: the whole ACL at once (one transaction: no half-replaced list)."""
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
            if cluster is None:
                raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Cluster {cluster_id} does not exist")
            cluster["acl"] = dict(acl)

    # ---- secret scope ACLs -------------------------------------------------------------------

    def scope_level(self, workspace_key: str, scope: str, principal: dict[str, Any]) -> str | None:
        with self._txn() as state:
            entry = state["workspaces"].get(workspace_key, {}).get("scopes", {}).get(scope)
            if entry is None:
                return None
            return _effective(SCOPE_LEVELS, entry.get("acls", {}), principal)


def _principal(ids: dict[str, Any], user_name: str, display: str, kind: str, admin: bool) -> dict[str, Any]:
    for existing in ids["principals"].values():
        if existing["userName"] == user_name:
            return dict(existing)
    pid = str(1_000_000_000_000 + len(ids["principals"]) + secrets.randbelow(10_000_000))
    principal = {
        "id": pid,
        "userName": user_name,
        "displayName": display,
        "type": kind,
        "groups": [ADMINS] if admin else [],
    }
    ids["principals"][pid] = principal
    return principal


def _by_name(ids: dict[str, Any], user_name: str) -> dict[str, Any]:
    for principal in ids["principals"].values():
        if user_name in (principal["userName"], principal["displayName"]):
            return principal  # type: ignore[no-any-return]
    raise KeyError(f"no principal {user_name!r} in the sandbox")


def _effective(levels: tuple[str, ...], acl: dict[str, str], principal: dict[str, Any]) -> str | None:
    if ADMINS in principal.get("groups", []):
        return levels[-1]
    names = principal_names(principal)
    best = max((rank(levels, level) for name, level in acl.items() if name in names), default=0)
    return levels[best - 1] if best else None
