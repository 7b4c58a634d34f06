"""The Databricks REST subset the provider and our commands use, under `/ws/<workspace-key>`.

State lives in the `SandboxStore`; this module parses requests, checks the PAT and the
`workspace.fail` knob, and renders Databricks-shaped answers and errors. Like the real
API, list answers omit an empty array (`{}`), so clients must cope with a missing key.

Rate limits: Databricks limits requests per workspace and answers 429 with an integer
`Retry-After` (https://learn.microsoft.com/azure/databricks/resources/limits, "API rate
limits"; the SDK reads the header as whole seconds, `databricks/sdk/errors/customizer.py`,
and maps `REQUEST_LIMIT_EXCEEDED` to `TooManyRequests`, `errors/platform.py`). With
`rate_limit_rps` set (`PROVISION_SANDBOX_RATE_LIMIT`), each workspace gets a token bucket
of that many requests per second (burst: one second's worth) across all its endpoints.

`clusters/list` is paginated at `LIST_PAGE_SIZE` (small on purpose, so every client's
paging is exercised; the real API pages too: databricks-sdk-py `service/compute.py`
`ClustersAPI.list` follows `next_page_token`) and honours `filter_by.is_pinned`, which is
how the real provider reads `is_pinned` (`clusters/resource_cluster.go` `setPinnedStatus`).
Rate limits and transient failures: knobs `workspace.status_429` (with `Retry-After`) and
`workspace.status_5xx` answer any endpoint the way the workspace's gateway does.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

from provisioner.ratelimit import TokenBucket
from provisioner.sandbox.server import Request, Response, json_response
from provisioner.sandbox.store import DatabricksError, SandboxStore

WORKSPACE_PREFIX = "/ws/"
LIST_PAGE_SIZE = 2
_API_RE = re.compile(r"^/api/2\.[01]/(?P<endpoint>[a-z\-]+/[a-z\-/]+)$")

Body = dict[str, Any]
Endpoint = Callable[[str, Body], Body]


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error_code": code, "message": message})


class WorkspaceEmulator:
    """`handle(request)` for `/ws/<key>/api/...`; PATs are accepted per emulator instance."""

    def __init__(self, store: SandboxStore, rate_limit_rps: float | None = None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
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
        }

    def add_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def add_workspace(self, workspace_key: str) -> None:
        with self._lock:
            self._workspaces.add(workspace_key)
        self.store.ensure_workspace(workspace_key)

    def handle(self, request: Request) -> Response:
        rest = request.path[len(WORKSPACE_PREFIX) :]
        workspace_key, _, api_path = rest.partition("/")
        with self._lock:
            known = workspace_key in self._workspaces
            token_ok = self._authorized(request.header("authorization"))
        if not known:
            return _error(404, "ENDPOINT_NOT_FOUND", f"No workspace {workspace_key} in this sandbox")
        wait = self._throttle(workspace_key)
        if wait > 0:
            return json_response(
                429,
                {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests. Please try again later."},
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if not token_ok:
            return _error(401, "UNAUTHENTICATED", "Invalid access token.")
        match = _API_RE.match("/" + api_path)
        entry = self._endpoints.get(match.group("endpoint")) if match else None
        if match is None or entry is None:
            return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} /{api_path}'")
        method, endpoint_fn = entry
        if request.method != method:
            return _error(405, "BAD_REQUEST", f"Method {request.method} not allowed for /{api_path}")
        endpoint = match.group("endpoint")
        fault = self.store.take_workspace_fault(endpoint)
        if fault is not None:
            return _fault_response(endpoint, *fault)
        if method == "GET":
            body: Any = {k: v[0] for k, v in request.query.items()}
        else:
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                return _error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
            if not isinstance(body, dict):
                return _error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        try:
            return json_response(200, endpoint_fn(workspace_key, body))
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

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("bearer "):
            return False
        presented = header[7:].strip()
        return any(secrets.compare_digest(presented, t) for t in self._tokens)

    # ---- clusters --------------------------------------------------------------------------

    def _create(self, ws: str, body: Body) -> Body:
        return {"cluster_id": self.store.create_cluster(ws, body, cluster_source="API")}

    def _edit(self, ws: str, body: Body) -> Body:
        self.store.edit_cluster(ws, body)
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
        clusters, next_token = self.store.list_clusters_page(
            ws, body.get("page_token") or None, max(1, min(asked, LIST_PAGE_SIZE)), pinned_only=pinned_only
        )
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
