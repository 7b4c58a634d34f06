"""The Databricks REST subset the provider and our commands use, under `/ws/<workspace-key>`.

State lives in the `SandboxStore`; this module parses requests, authenticates the caller,
checks permissions and the `workspace.fail` knob, and renders Databricks-shaped answers
and errors. Like the real API, list answers omit an empty array (`{}`), so clients must
cope with a missing key.

Identity, as a real workspace does it (see store/identities.py for the sources):
- `Authorization: Bearer <PAT or OAuth access token>`; anything else is 401.
- OAuth M2M: `GET /.well-known/databricks-config` (host metadata naming the OIDC root,
  databricks-sdk-py `config.py` `_resolve_host_metadata`, `oauth.py` `HostMetadata`), then
  `GET /oidc/.well-known/oauth-authorization-server` (discovery, `oauth.py`
  `get_endpoints_from_url`) and
  `POST /oidc/v1/token` (client_credentials, client id + secret in HTTP Basic auth as the
  SDK's `ClientCredentials(use_header=True)` sends them), answering an expiring token.
- SCIM reads (`Me`; `Users` / `ServicePrincipals` filtered by name, with `groups` for admin
  callers only): provisioner/sandbox/scim.py.
- Cluster owners and secret references (only the owner may add one to `spark_conf` /
  `spark_env_vars`; the owner's READ, direct or through a group, resolves it at start;
  admin-only `clusters/change-owner` of a terminated cluster): store/ownership.py.
- Permission checks with the real error: 403 `PERMISSION_DENIED`.

Rate limits: Databricks limits requests per workspace and answers 429 with an integer
`Retry-After` (https://learn.microsoft.com/azure/databricks/resources/limits, "API rate
limits"; the SDK reads the header as whole seconds, `databricks/sdk/errors/customizer.py`,
and maps `REQUEST_LIMIT_EXCEEDED` to `TooManyRequests`, `errors/platform.py`). With
`rate_limit_rps` set (`PROVISION_SANDBOX_RATE_LIMIT`), each workspace gets a token bucket
of that many requests per second (burst: one second's worth) across all its endpoints.

`clusters/list` is paginated (databricks-sdk-py `service/compute.py` `ClustersAPI.list`
follows `next_page_token`): a request without `page_size` gets `LIST_PAGE_SIZE` clusters a
page (small on purpose, so every client's paging is exercised), one with `page_size` gets up
to that many, at most `LIST_MAX_PAGE_SIZE` — the real provider asks for 100 pinned clusters
in one page ("pinned cluster limit - just get all of them", `clusters/resource_cluster.go`
`setPinnedStatus`). It honours `filter_by.is_pinned` (how that provider reads `is_pinned`)
and `filter_by.cluster_states` (repeated query parameter, `ListClustersFilterBy`).
Rate limits and transient failures: knobs `workspace.status_429` (with `Retry-After`) and
`workspace.status_5xx` answer any endpoint the way the workspace's gateway does.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from provisioner.ratelimit import TokenBucket
from provisioner.sandbox.scim import LIST_PATHS, ME_PATH, scim_list, scim_user
from provisioner.sandbox.server import Request, Response, json_response
from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.store.identities import ADMINS, CLUSTER_LEVELS, SCOPE_LEVELS, rank

WORKSPACE_PREFIX = "/ws/"
LIST_PAGE_SIZE = 2
LIST_MAX_PAGE_SIZE = 100
_API_RE = re.compile(r"^/api/2\.[01]/(?P<endpoint>[a-z\-]+/[a-z\-/]+)$")
# The Command Execution API is still 1.2 (provisioner/sandbox/command_execution.py).
_API_12_RE = re.compile(r"^/api/1\.2/(?P<endpoint>(?:contexts|commands)/[a-z]+)$")

Body = dict[str, Any]
Endpoint = Callable[[str, Body], Body]


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error_code": code, "message": message})


_CALLER = threading.local()


def caller() -> dict[str, Any]:
    """The authenticated principal of the request being handled (set by `handle`)."""
    principal: dict[str, Any] = _CALLER.principal
    return principal


# endpoint -> (what the permission is on, the level it needs); absent = any caller.
_REQUIRES: dict[str, tuple[str, str]] = {
    "clusters/get": ("cluster", "CAN_ATTACH_TO"),
    "clusters/start": ("cluster", "CAN_RESTART"),
    "clusters/restart": ("cluster", "CAN_RESTART"),
    "clusters/edit": ("cluster", "CAN_MANAGE"),
    "clusters/resize": ("cluster", "CAN_MANAGE"),
    "clusters/delete": ("cluster", "CAN_MANAGE"),
    "clusters/permanent-delete": ("cluster", "CAN_MANAGE"),
    # "This API can only be called by workspace admins" (Clusters API reference, pin/unpin).
    "clusters/pin": ("admin", ""),
    "clusters/change-owner": ("admin", ""),
    "clusters/unpin": ("admin", ""),
    "secrets/scopes/delete": ("scope", "MANAGE"),
    "secrets/put": ("scope", "WRITE"),
    "secrets/delete": ("scope", "WRITE"),
    "secrets/list": ("scope", "READ"),
    "secrets/acls/list": ("scope", "MANAGE"),
    "secrets/acls/get": ("scope", "MANAGE"),
    "secrets/acls/put": ("scope", "MANAGE"),
    "secrets/acls/delete": ("scope", "MANAGE"),
}
_PERMISSIONS_RE = re.compile(r"^/api/2\.0/permissions/clusters/(?P<cluster_id>[^/]+)$")
_DISCOVERY_PATH = "/oidc/.well-known/oauth-authorization-server"
_HOST_METADATA_PATH = "/.well-known/databricks-config"
_TOKEN_PATH = "/oidc/v1/token"


class WorkspaceEmulator:
    """`handle(request)` for `/ws/<key>/...`; callers are the store's principals."""

    def __init__(self, store: SandboxStore, rate_limit_rps: float | None = None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._workspaces: set[str] = set()
        self._rate_limit = rate_limit_rps
        self._buckets: dict[str, TokenBucket] = {}
        self.throttled = 0  # 429s answered, for tests and benchmarks
        self._endpoints: dict[str, tuple[str, Endpoint]] = {
            "clusters/create": ("POST", self._create),
            "clusters/edit": ("POST", self._edit),
            "clusters/start": ("POST", self._by_id(store.start_cluster)),
            "clusters/restart": ("POST", self._by_id(store.restart_cluster)),
            "clusters/delete": ("POST", self._by_id(store.delete_cluster)),
            "clusters/permanent-delete": ("POST", self._by_id(store.permanent_delete_cluster)),
            "clusters/resize": ("POST", self._resize),
            "clusters/change-owner": ("POST", self._change_owner),
            "clusters/pin": ("POST", self._pin(True)),
            "clusters/unpin": ("POST", self._pin(False)),
            "clusters/get": ("GET", self._get),
            "clusters/list": ("GET", self._list),
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
            "secrets/acls/list": ("GET", self._list_acls),
            "secrets/acls/get": ("GET", self._get_acl),
            "secrets/acls/put": ("POST", self._put_acl),
            "secrets/acls/delete": ("POST", self._delete_acl),
            "token/create": ("POST", self._create_token),
        }

    def add_token(self, token: str, user_name: str = "sandbox-user@example.com") -> None:
        """A PAT for a user (a workspace admin unless the store says otherwise)."""
        self.store.add_user(user_name, token)

    def add_service_principal(self, client_id: str, client_secret: str, display_name: str | None = None) -> None:
        self.store.add_service_principal(client_id, client_secret, display_name=display_name)

    def add_endpoints(self, endpoints: dict[str, tuple[str, Endpoint]]) -> None:
        """More APIs on every workspace (`{"contexts/create": ("POST", handler), …}`)."""
        self._endpoints.update(endpoints)

    def add_workspace(self, workspace_key: str) -> None:
        with self._lock:
            self._workspaces.add(workspace_key)
        self.store.ensure_workspace(workspace_key)

    def handle(self, request: Request) -> Response:
        rest = request.path[len(WORKSPACE_PREFIX) :]
        workspace_key, _, api_path = rest.partition("/")
        api_path = "/" + api_path
        with self._lock:
            known = workspace_key in self._workspaces
        if not known:
            return _error(404, "ENDPOINT_NOT_FOUND", f"No workspace {workspace_key} in this sandbox")
        wait = self._throttle(workspace_key)
        if wait > 0:
            return json_response(
                429,
                {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests. Please try again later."},
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if api_path == _HOST_METADATA_PATH:
            return self._host_metadata(request, workspace_key)
        if api_path == _DISCOVERY_PATH:
            return self._discovery(request, workspace_key)
        if api_path == _TOKEN_PATH:
            return self._token(request)
        principal = self._authenticate(request.header("authorization"))
        if principal is None:
            return _error(401, "UNAUTHENTICATED", "Invalid access token.")
        _CALLER.principal = principal
        try:
            return self._dispatch(request, workspace_key, api_path, principal)
        finally:
            _CALLER.principal = None

    def _dispatch(self, request: Request, ws: str, api_path: str, principal: dict[str, Any]) -> Response:
        if api_path == ME_PATH and request.method == "GET":
            return json_response(200, scim_user(principal))
        if api_path in LIST_PATHS and request.method == "GET":
            query = {k: v[0] for k, v in request.query.items()}
            return scim_list(api_path, query, principal, self.store.find_principal)
        permissions = _PERMISSIONS_RE.match(api_path)
        if permissions:
            return self._cluster_permissions(request, ws, permissions.group("cluster_id"), principal)
        match = _API_RE.match(api_path) or _API_12_RE.match(api_path)
        entry = self._endpoints.get(match.group("endpoint")) if match else None
        if match is None or entry is None:
            return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {api_path}'")
        method, endpoint_fn = entry
        if request.method != method:
            return _error(405, "BAD_REQUEST", f"Method {request.method} not allowed for {api_path}")
        endpoint = match.group("endpoint")
        fault = self.store.take_workspace_fault(endpoint)
        if fault is not None:
            return _fault_response(endpoint, *fault)
        if method == "GET":
            # A repeated parameter (`filter_by.cluster_states=A&filter_by.cluster_states=B`,
            # databricks-sdk `_fix_query_string`) stays a list.
            body: Any = {k: v[0] if len(v) == 1 else v for k, v in request.query.items()}
        else:
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                return _error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
            if not isinstance(body, dict):
                return _error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        try:
            self._authorize(ws, endpoint, body, principal)
            return json_response(200, endpoint_fn(ws, body))
        except DatabricksError as exc:
            return _error(exc.status, exc.error_code, exc.message)

    def _throttle(self, workspace_key: str) -> float:
        """0 when the request may proceed, else seconds until the workspace accepts one."""
        if not self._rate_limit:
            return 0.0
        with self._lock:
            bucket = self._buckets.setdefault(workspace_key, TokenBucket(self._rate_limit))
        wait = bucket.take()
        if wait > 0:
            with self._lock:
                self.throttled += 1
        return wait

    # ---- identity ---------------------------------------------------------------------------

    def _authenticate(self, header: str | None) -> dict[str, Any] | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        return self.store.principal_for_token(header[7:].strip())

    def _host_metadata(self, request: Request, ws: str) -> Response:
        origin = f"http://{request.header('host') or '127.0.0.1'}{WORKSPACE_PREFIX}{ws}"
        digits = ws.split(".")[0].removeprefix("adb-")
        return json_response(
            200,
            {
                "oidc_endpoint": f"{origin}/oidc",
                "workspace_id": digits if digits.isdigit() else None,
                "cloud": "azure",
            },
        )

    def _discovery(self, request: Request, ws: str) -> Response:
        origin = f"http://{request.header('host') or '127.0.0.1'}{WORKSPACE_PREFIX}{ws}"
        return json_response(
            200,
            {
                "issuer": f"{origin}/oidc",
                "authorization_endpoint": f"{origin}/oidc/v1/authorize",
                "token_endpoint": f"{origin}{_TOKEN_PATH}",
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            },
        )

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, "BAD_REQUEST", f"Method {request.method} not allowed for {_TOKEN_PATH}")
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        client_id, client_secret = _basic_auth(request.header("authorization"))
        client_id = client_id or form.get("client_id")
        client_secret = client_secret or form.get("client_secret")
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        issued = self.store.issue_oauth_token(client_id or "", client_secret or "")
        if issued is None:
            return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        token, seconds = issued
        return json_response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": seconds, "scope": "all-apis"},
        )

    def _authorize(self, ws: str, endpoint: str, body: Body, principal: dict[str, Any]) -> None:
        need = _REQUIRES.get(endpoint)
        if need is None:
            return
        kind, level = need
        who = principal["userName"]
        if kind == "admin":
            if ADMINS not in principal.get("groups", []):
                raise DatabricksError(403, "PERMISSION_DENIED", f"{who} is not a workspace admin")
            return
        if kind == "cluster":
            cluster_id = _required(body, "cluster_id")
            have = self.store.cluster_level(ws, cluster_id, principal)
            if self.store.get_cluster(ws, cluster_id) is None:
                return  # the endpoint answers "does not exist"
            if rank(CLUSTER_LEVELS, have) < rank(CLUSTER_LEVELS, level):
                raise DatabricksError(
                    403,
                    "PERMISSION_DENIED",
                    f"User {who} does not have {level} permission on cluster {cluster_id}. "
                    "Please contact your administrator.",
                )
            return
        scope = _required(body, "scope")
        if not any(s["name"] == scope for s in self.store.list_scopes(ws)):
            return  # the endpoint answers RESOURCE_DOES_NOT_EXIST
        have = self.store.scope_level(ws, scope, principal)
        if rank(SCOPE_LEVELS, have) < rank(SCOPE_LEVELS, level):
            raise DatabricksError(
                403,
                "PERMISSION_DENIED",
                f"User {who} does not have {level} permission on scope {scope}",
            )

    def _cluster_permissions(self, request: Request, ws: str, cluster_id: str, principal: dict[str, Any]) -> Response:
        """`/api/2.0/permissions/clusters/{id}`: GET the ACL, PATCH to add entries (SDK `service/iam.py`)."""
        if self.store.get_cluster(ws, cluster_id) is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Cluster {cluster_id} does not exist")
        level = self.store.cluster_level(ws, cluster_id, principal)
        if level != "CAN_MANAGE":
            return _error(
                403,
                "PERMISSION_DENIED",
                f"User {principal['userName']} does not have CAN_MANAGE permission on cluster {cluster_id}",
            )
        if request.method in ("PATCH", "PUT"):
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                return _error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
            for entry in body.get("access_control_list", []):
                name = entry.get("user_name") or entry.get("service_principal_name") or entry.get("group_name")
                try:
                    self.store.set_cluster_permission(ws, cluster_id, str(name), entry.get("permission_level"))
                except DatabricksError as exc:
                    return _error(exc.status, exc.error_code, exc.message)
        elif request.method != "GET":
            return _error(405, "BAD_REQUEST", f"Method {request.method} not allowed")
        acl = self.store.cluster_acl(ws, cluster_id)
        return json_response(
            200,
            {
                "object_id": f"/clusters/{cluster_id}",
                "object_type": "cluster",
                "access_control_list": [
                    {
                        _principal_field(name): name,
                        "all_permissions": [{"permission_level": lvl, "inherited": False}],
                    }
                    for name, lvl in sorted(acl.items())
                ]
                + [
                    {
                        "group_name": ADMINS,
                        "all_permissions": [
                            {
                                "permission_level": "CAN_MANAGE",
                                "inherited": True,
                                "inherited_from_object": ["/clusters/"],
                            }
                        ],
                    }
                ],
            },
        )

    # ---- clusters --------------------------------------------------------------------------

    def _create(self, ws: str, body: Body) -> Body:
        return {"cluster_id": self.store.create_cluster(ws, body, cluster_source="API", creator=caller()["userName"])}

    def _edit(self, ws: str, body: Body) -> Body:
        self.store.edit_cluster(ws, body, caller=caller()["userName"])
        return {}

    def _change_owner(self, ws: str, body: Body) -> Body:
        self.store.change_cluster_owner(ws, _required(body, "cluster_id"), _required(body, "owner_username"))
        return {}

    def _resize(self, ws: str, body: Body) -> Body:
        self.store.resize_cluster(ws, _required(body, "cluster_id"), body.get("num_workers"), body.get("autoscale"))
        return {}

    def _get(self, ws: str, body: Body) -> Body:
        cluster_id = _required(body, "cluster_id")
        view = self.store.get_cluster(ws, cluster_id)
        if view is None:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return view

    def _list(self, ws: str, body: Body) -> Body:
        try:
            asked = int(body.get("page_size") or LIST_PAGE_SIZE)
        except ValueError:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "page_size must be an integer") from None
        pinned_only = str(body.get("filter_by.is_pinned", "")).lower() == "true"
        states = body.get("filter_by.cluster_states") or ()
        clusters, next_token = self.store.list_clusters_page(
            ws,
            body.get("page_token") or None,
            max(1, min(asked, LIST_MAX_PAGE_SIZE)),
            pinned_only=pinned_only,
            states=frozenset([states] if isinstance(states, str) else states),
        )
        # Only clusters the caller has a permission level on are listed.
        who = caller()
        clusters = [c for c in clusters if self.store.cluster_level(ws, c["cluster_id"], who) is not None]
        out: Body = {"clusters": clusters} if clusters else {}
        if next_token:
            out["next_page_token"] = next_token
        return out

    @staticmethod
    def _by_id(action: Callable[[str, str], None]) -> Endpoint:
        def endpoint(ws: str, body: Body) -> Body:
            action(ws, _required(body, "cluster_id"))
            return {}

        return endpoint

    def _pin(self, pinned: bool) -> Endpoint:
        def endpoint(ws: str, body: Body) -> Body:
            self.store.pin_cluster(ws, _required(body, "cluster_id"), pinned)
            return {}

        return endpoint

    # ---- cluster policies (store/policies.py has the semantics and sources) ----------------

    def _get_policy(self, ws: str, body: Body) -> Body:
        return self.store.get_policy(ws, _required(body, "policy_id"))

    def _list_policies(self, ws: str, body: Body) -> Body:
        policies = self.store.list_policies(ws)
        return {"policies": policies, "total_count": len(policies)} if policies else {"total_count": 0}

    def _create_policy(self, ws: str, body: Body) -> Body:
        definition = body.get("definition") or "{}"
        return {"policy_id": self.store.create_policy(ws, _required(body, "name"), str(definition))}

    def _edit_policy(self, ws: str, body: Body) -> Body:
        self.store.edit_policy(ws, _required(body, "policy_id"), str(body.get("definition") or "{}"))
        return {}

    def _delete_policy(self, ws: str, body: Body) -> Body:
        self.store.delete_policy(ws, _required(body, "policy_id"))
        return {}

    # ---- secrets ---------------------------------------------------------------------------

    def _create_scope(self, ws: str, body: Body) -> Body:
        self.store.create_scope(
            ws,
            _required(body, "scope"),
            body.get("scope_backend_type") or "DATABRICKS",
            creator=caller()["userName"],
            initial_manage_principal=body.get("initial_manage_principal"),
        )
        return {}

    def _delete_scope(self, ws: str, body: Body) -> Body:
        self.store.delete_scope(ws, _required(body, "scope"))
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
        self.store.put_secret(ws, _required(body, "scope"), _required(body, "key"), value)
        return {}

    def _delete_secret(self, ws: str, body: Body) -> Body:
        self.store.delete_secret(ws, _required(body, "scope"), _required(body, "key"))
        return {}

    # ---- secret scope ACLs (store/acls.py) ------------------------------------------------

    def _list_acls(self, ws: str, body: Body) -> Body:
        acls = self.store.scope_acls(ws, _required(body, "scope"))
        items = [{"principal": p, "permission": perm} for p, perm in sorted(acls.items())]
        return {"items": items} if items else {}

    def _get_acl(self, ws: str, body: Body) -> Body:
        scope, principal = _required(body, "scope"), _required(body, "principal")
        acls = self.store.scope_acls(ws, scope)
        if principal not in acls:
            raise DatabricksError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Failed to get secret ACL for {principal} in {scope}"
            )
        return {"principal": principal, "permission": acls[principal]}

    def _put_acl(self, ws: str, body: Body) -> Body:
        self.store.put_scope_acl(
            ws, _required(body, "scope"), _required(body, "principal"), _required(body, "permission")
        )
        return {}

    def _delete_acl(self, ws: str, body: Body) -> Body:
        self.store.delete_scope_acl(ws, _required(body, "scope"), _required(body, "principal"))
        return {}

    def _list_secrets(self, ws: str, body: Body) -> Body:
        listed = self.store.list_secrets(ws, _required(body, "scope"))
        return {"secrets": listed} if listed else {}

    # ---- tokens ---------------------------------------------------------------------------

    def _create_token(self, ws: str, body: Body) -> Body:
        """Token API `create` (SDK `service/settings.py` `TokensAPI.create`): a PAT of the caller."""
        token = "dapi" + secrets.token_hex(16)
        self.store.add_pat(caller()["id"], token)
        return {
            "token_value": token,
            "token_info": {"token_id": secrets.token_hex(8), "comment": str(body.get("comment") or "")},
        }


def _fault_response(endpoint: str, status: int, retry_after: int | None) -> Response:
    if status == 429:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests. Please wait and retry."}
        return json_response(429, body, headers)
    if status == 500:
        return _error(500, "INTERNAL_ERROR", f"Injected failure for {endpoint}")
    return _error(status, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable.")


def _required(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
    return value


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(header[6:].strip()).decode()
    except ValueError:
        return None, None
    client_id, _, client_secret = raw.partition(":")
    return client_id, client_secret


def _principal_field(name: str) -> str:
    if name in ("users", ADMINS):
        return "group_name"
    return "user_name" if "@" in name else "service_principal_name"
