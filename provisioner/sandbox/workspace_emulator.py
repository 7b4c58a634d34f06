"""The Databricks REST subset the provider and our commands use, under `/ws/<workspace-key>`.

State lives in the `SandboxStore`; this module parses requests, authenticates the caller,
checks permissions and the `workspace.fail` knob, and renders Databricks-shaped answers
and errors. Like the real API, list answers omit an empty array (`{}`), so clients must
cope with a missing key.

Identity, as a real workspace does it (see store/identities.py for the sources):
- `Authorization: Bearer <PAT or OAuth access token>`; anything else is 401.
- OAuth M2M (host metadata, discovery, `/oidc/v1/token`): provisioner/sandbox/workspace_oauth.py.
- An unknown or expired bearer token: 403 with `{"error_code": 403, "message": "Invalid
  access token."}` — a number for `error_code` — and `X-Databricks-Reason-Phrase`, as real
  workspaces answer (request logs in databricks/databricks-sdk-go issues #873, #917, #1046).
  No `Authorization` header at all stays 401.
- SCIM (`Me`; `Users` / `ServicePrincipals` / `Groups`: list with filters and paging, get,
  create, replace, patch, delete): provisioner/sandbox/scim.py.
- Runtimes, node types, cluster events, policy families: provisioner/sandbox/workspace_compute.py.
- Cluster owners and secret references (only the owner may add one to `spark_conf` /
  `spark_env_vars`; the owner's READ, direct or through a group, resolves it at start;
  admin-only `clusters/change-owner` of a terminated cluster): store/ownership.py.
- Permission checks with the real error, 403 `PERMISSION_DENIED`, and the cluster
  permissions API: provisioner/sandbox/workspace_permissions.py.
- Secret scopes, secrets, ACLs, cluster policies, PATs: provisioner/sandbox/workspace_secrets.py.
- Instance pools, cluster libraries, permissions of policies and pools:
  provisioner/sandbox/workspace_objects.py.

Rate limits: Databricks limits requests per workspace and answers 429 with an integer
`Retry-After` (https://learn.microsoft.com/azure/databricks/resources/limits, "API rate
limits"; the SDK reads the header as whole seconds, `databricks/sdk/errors/customizer.py`,
and maps `REQUEST_LIMIT_EXCEEDED` to `TooManyRequests`, `errors/platform.py`). With
`rate_limit_rps` set (`PROVISION_SANDBOX_RATE_LIMIT`), each workspace gets a token bucket
of that many requests per second (burst: one second's worth) across all its endpoints.

`/api/2.1/clusters/list` is paginated (databricks-sdk-py `service/compute.py` `ClustersAPI.list`
follows `next_page_token`); `/api/2.0/clusters/list` is not — it answers every cluster in one
answer, with no `next_page_token` (Clusters API 2.0 reference: `clusters/list` "Return
information about all pinned clusters, active clusters, up to 200 of the most recently
terminated all-purpose clusters…", no paging parameters; the legacy databricks-cli
`ClusterService.list_clusters` reads one answer). A 2.1 request without `page_size` gets `LIST_PAGE_SIZE` clusters a
page (small on purpose, so every client's paging is exercised), one with `page_size` gets up
to that many, at most `LIST_MAX_PAGE_SIZE` — the real provider asks for 100 pinned clusters
in one page ("pinned cluster limit - just get all of them", `clusters/resource_cluster.go`
`setPinnedStatus`). It honours `filter_by.is_pinned` (how that provider reads `is_pinned`;
`false` lists the unpinned clusters only: `ListClustersFilterBy.is_pinned`, "whether the
clusters are pinned or not", databricks-sdk-py `service/compute.py`)
and `filter_by.cluster_states` (repeated query parameter, `ListClustersFilterBy`).
Rate limits and transient failures: knobs `workspace.status_429` (with `Retry-After`) and
`workspace.status_5xx` answer any endpoint the way the workspace's gateway does.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner.sandbox.ratelimit import TokenBucket
from provisioner.sandbox.scim import handle_scim, is_scim
from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.wire import Request, Response, json_response
from provisioner.sandbox.workspace_common import CALLER, WORKSPACE_PREFIX, Body, Endpoint, caller, error, required
from provisioner.sandbox.workspace_compute import POLICY_FAMILIES_RE, ComputeEndpoints, policy_family_answer
from provisioner.sandbox.workspace_oauth import (
    DISCOVERY_PATH,
    HOST_METADATA_PATH,
    TOKEN_PATH,
    discovery,
    host_metadata,
    token,
)
from provisioner.sandbox.workspace_objects import OBJECT_PERMISSIONS_RE, ObjectEndpoints, object_permissions
from provisioner.sandbox.workspace_permissions import PERMISSIONS_RE, authorize, cluster_permissions
from provisioner.sandbox.workspace_secrets import SecretEndpoints

__all__ = ["LIST_MAX_PAGE_SIZE", "LIST_PAGE_SIZE", "WORKSPACE_PREFIX", "WorkspaceEmulator", "caller"]

LIST_PAGE_SIZE = 2
WORKSPACE_CONF_PATH = "/api/2.0/workspace-conf"
LIST_MAX_PAGE_SIZE = 100
_UNPAGED = 1 << 30  # clusters/list 2.0: every cluster in one answer
_API_RE = re.compile(r"^/api/(?P<version>2\.[01])/(?P<endpoint>[a-z\-]+/[a-z\-/]+)$")
HOLD_LIMIT_SECONDS = 300
# The Command Execution API is still 1.2 (provisioner/sandbox/command_execution.py).
_API_12_RE = re.compile(r"^/api/1\.2/(?P<endpoint>(?:contexts|commands)/[a-z]+)$")


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
            **SecretEndpoints(store).endpoints(),
            **ObjectEndpoints(store).endpoints(),
            **ComputeEndpoints(store).endpoints(),
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
            return error(404, "ENDPOINT_NOT_FOUND", f"No workspace {workspace_key} in this sandbox")
        wait = self._throttle(workspace_key)
        if wait > 0:
            return json_response(
                429,
                {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests. Please try again later."},
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if api_path == HOST_METADATA_PATH:
            return host_metadata(request, workspace_key)
        if api_path == DISCOVERY_PATH:
            return discovery(request, workspace_key)
        if api_path == TOKEN_PATH:
            return token(self.store, request)
        header = request.header("authorization")
        principal = self._authenticate(header)
        if principal is None and not header:
            return error(401, "UNAUTHENTICATED", "No access token was sent.")
        if principal is None:
            return json_response(
                403,
                {"error_code": 403, "message": "Invalid access token."},
                {"X-Databricks-Reason-Phrase": "Invalid access token."},
            )
        CALLER.principal = principal
        try:
            return self._dispatch(request, workspace_key, api_path, principal)
        finally:
            CALLER.principal = None

    def _dispatch(self, request: Request, ws: str, api_path: str, principal: dict[str, Any]) -> Response:
        if api_path == WORKSPACE_CONF_PATH and request.method == "GET":
            return self._workspace_conf(request, principal)
        if is_scim(api_path):
            return handle_scim(self.store, request, api_path, principal)
        objects = OBJECT_PERMISSIONS_RE.match(api_path)
        if objects:
            return object_permissions(self.store, request, ws, objects)
        permissions = PERMISSIONS_RE.match(api_path)
        if permissions:
            return cluster_permissions(
                self.store, request, ws, permissions.group("cluster_id"), principal, bool(permissions.group("levels"))
            )
        families = POLICY_FAMILIES_RE.match(api_path)
        if families and request.method == "GET":
            try:
                return json_response(200, policy_family_answer(families, {k: v[0] for k, v in request.query.items()}))
            except DatabricksError as exc:
                return error(exc.status, exc.error_code, exc.message)
        match = _API_RE.match(api_path) or _API_12_RE.match(api_path)
        entry = self._endpoints.get(match.group("endpoint")) if match else None
        if match is None or entry is None:
            return error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {api_path}'")
        method, endpoint_fn = entry
        if request.method != method:
            return error(405, "BAD_REQUEST", f"Method {request.method} not allowed for {api_path}")
        endpoint = match.group("endpoint")
        fault = self.store.take_workspace_fault(endpoint)
        if fault is not None and fault.status is not None:
            return _fault_response(endpoint, fault.status, fault.retry_after)
        if method == "GET":
            # A repeated parameter (`filter_by.cluster_states=A&filter_by.cluster_states=B`,
            # databricks-sdk `_fix_query_string`) stays a list.
            body: Any = {k: v[0] if len(v) == 1 else v for k, v in request.query.items()}
        else:
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                return error(400, "MALFORMED_REQUEST", "Could not parse request object: invalid JSON")
            if not isinstance(body, dict):
                return error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        if endpoint == "clusters/list" and match.groupdict().get("version") == "2.0":
            body = {**body, "page_size": str(_UNPAGED)}
        client = request.header("user-agent") or ""
        self.store.hold(f"before:{endpoint}", client)  # tests' barriers (store.arm_hold): nothing happened yet
        try:
            authorize(self.store, ws, endpoint, body, principal)
            answer = endpoint_fn(ws, body)
        except DatabricksError as exc:
            if getattr(exc, "legacy", False):
                return json_response(exc.status, {"error": exc.message})  # API 1.2's shape
            return error(exc.status, exc.error_code, exc.message)
        if fault is not None and fault.hold_until is not None:
            _hold(Path(fault.hold_until))
        self.store.hold(f"after:{endpoint}", client)  # it took effect; the answer waits
        return json_response(200, answer)

    def _workspace_conf(self, request: Request, principal: dict[str, Any]) -> Response:
        """`GET /api/2.0/workspace-conf?keys=a,b`: admins only; an unset key answers null (provider
        `docs/resources/workspace_conf.md`; `maxTokenLifetimeDays` is the one this sandbox knows)."""
        if "admins" not in principal.get("groups", []):
            return error(403, "PERMISSION_DENIED", "Only admins can access workspace configuration")
        keys = [k for k in (request.param("keys") or "").split(",") if k]
        cap = self.store.max_token_lifetime_days()
        known = {"maxTokenLifetimeDays": None if cap is None else str(cap)}
        return json_response(200, {k: known.get(k) for k in keys})

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

    # ---- clusters --------------------------------------------------------------------------

    def _create(self, ws: str, body: Body) -> Body:
        return {"cluster_id": self.store.create_cluster(ws, body, cluster_source="API", creator=caller()["userName"])}

    def _edit(self, ws: str, body: Body) -> Body:
        self.store.edit_cluster(ws, body, caller=caller()["userName"])
        return {}

    def _change_owner(self, ws: str, body: Body) -> Body:
        self.store.change_cluster_owner(ws, required(body, "cluster_id"), required(body, "owner_username"))
        return {}

    def _resize(self, ws: str, body: Body) -> Body:
        self.store.resize_cluster(ws, required(body, "cluster_id"), body.get("num_workers"), body.get("autoscale"))
        return {}

    def _get(self, ws: str, body: Body) -> Body:
        cluster_id = required(body, "cluster_id")
        view = self.store.get_cluster(ws, cluster_id)
        if view is None:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return view

    def _list(self, ws: str, body: Body) -> Body:
        try:
            asked = int(body.get("page_size") or LIST_PAGE_SIZE)
        except ValueError:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "page_size must be an integer") from None
        if asked != _UNPAGED:
            asked = min(asked, LIST_MAX_PAGE_SIZE)
        pinned = {"true": True, "false": False}.get(str(body.get("filter_by.is_pinned", "")).lower())
        states = body.get("filter_by.cluster_states") or ()
        clusters, next_token = self.store.list_clusters_page(
            ws,
            body.get("page_token") or None,
            max(1, asked),
            pinned=pinned,
            states=frozenset([states] if isinstance(states, str) else states),
        )
        # Only clusters the caller has a permission level on are listed.
        who = caller()
        levels = self.store.cluster_levels(ws, [c["cluster_id"] for c in clusters], who)
        clusters = [c for c in clusters if levels[c["cluster_id"]] is not None]
        out: Body = {"clusters": clusters} if clusters else {}
        if next_token:
            out["next_page_token"] = next_token
        return out

    @staticmethod
    def _by_id(action: Callable[[str, str], None]) -> Endpoint:
        def endpoint(ws: str, body: Body) -> Body:
            action(ws, required(body, "cluster_id"))
            return {}

        return endpoint

    def _pin(self, pinned: bool) -> Endpoint:
        def endpoint(ws: str, body: Body) -> Body:
            self.store.pin_cluster(ws, required(body, "cluster_id"), pinned)
            return {}

        return endpoint


def _hold(release: Path) -> None:
    """Wait for the test's release file (the `workspace.hold_answer` barrier); bounded, so a
    test that never releases fails on its own assertions instead of hanging the server."""
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _fault_response(endpoint: str, status: int, retry_after: int | None) -> Response:
    if status == 429:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests. Please wait and retry."}
        return json_response(429, body, headers)
    if status == 500:
        return error(500, "INTERNAL_ERROR", f"Injected failure for {endpoint}")
    return error(status, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable.")
