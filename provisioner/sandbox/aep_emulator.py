"""IMS token endpoint, Connectors (DLZ credentials) and Flow Service, as AEP answers them.

Client registrations and issued IMS access tokens live in memory (a token is only good
on the server that issued it, as with IMS); landing zones, connections and fault knobs
live in the shared `SandboxStore` so tests in other processes can see and steer them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from provisioner.sandbox.command_execution import DEDICATED_MODES
from provisioner.sandbox.store import CREDENTIAL_TYPES, DatabricksError, SandboxStore
from provisioner.sandbox.store.identities import principal_names
from provisioner.sandbox.wire import Request, Response, json_response

IMS_TOKEN_PATH = "/ims/token/v3"
CREDENTIALS_PATH = "/data/foundation/connectors/landingzone/credentials"
CONNECTIONS_PATH = "/data/foundation/flowservice/connections"
DATABRICKS_CONNECTION_SPEC = "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b"
ACCESS_TOKEN_SECONDS = 86399

_HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    b"</center><hr><center>nginx</center></body></html>"
)


@dataclass
class _Client:
    secret: str
    org_id: str | None


@dataclass
class _AccessToken:
    client_id: str
    expires_at: float


def _problem(status: int, detail: str, title: str = "BadRequestError") -> Response:
    return json_response(
        status,
        {
            "type": "https://ns.adobe.com/aep/errors/BadRequestError",
            "status": status,
            "title": title,
            "detail": detail,
        },
        {"Content-Type": "application/problem+json"},
    )


def _gateway_error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error_code": code, "message": message})


class AepEmulator:
    """`handle(request)` for every path under /ims and /data."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _AccessToken] = {}

    def register_client(self, client_id: str, client_secret: str, org_id: str | None = None) -> None:
        """Make IMS accept this client; with an org, AEP also insists on that org header."""
        with self._lock:
            self._clients[client_id] = _Client(client_secret, org_id)

    def expire_access_token(self, access_token: str) -> None:
        """Test helper: IMS tokens live a day, too long to wait for."""
        with self._lock:
            if access_token in self._tokens:
                self._tokens[access_token].expires_at = 0.0

    def handle(self, request: Request) -> Response:
        if request.path == IMS_TOKEN_PATH:
            return self._ims_token(request) if request.method == "POST" else _method_not_allowed()
        fault = self.store.take_aep_fault()
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.html:
            return Response(502, _HTML_PAGE, {"Content-Type": "text/html"})
        if fault.status == 429:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return json_response(429, {"error_code": "429001", "message": "Too many requests"}, headers)
        if fault.status is not None:
            return _gateway_error(
                fault.status, str(fault.status), "Service unavailable: you may be reaching the API limit"
            )
        if request.path == CREDENTIALS_PATH:
            return self._credentials(request)
        if request.path == CONNECTIONS_PATH or request.path.startswith(CONNECTIONS_PATH + "/"):
            return self._connections(request)
        return _gateway_error(404, "404000", "Resource not found")

    # ---- IMS -----------------------------------------------------------------------------

    def _ims_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, client_secret):
            return json_response(
                401, {"error": "invalid_client", "error_description": "invalid client_id or client_secret"}
            )
        if not form.get("scope"):
            return json_response(400, {"error": "invalid_scope", "error_description": "scope parameter is required"})
        token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _AccessToken(client_id, time.time() + ACCESS_TOKEN_SECONDS)
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": ACCESS_TOKEN_SECONDS})

    # ---- gateway checks ----------------------------------------------------------------

    def _gateway(self, request: Request) -> tuple[str, str] | Response:
        """(org, sandbox) when the headers pass AEP's gateway, else its error answer."""
        auth = request.header("authorization") or ""
        if not auth:
            return _gateway_error(403, "403010", "Oauth token is missing.")
        api_key = request.header("x-api-key")
        if not api_key:
            return _gateway_error(403, "403000", "Api Key is required")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            issued = self._tokens.get(bearer)
            client = self._clients.get(issued.client_id) if issued else None
        if issued is None or issued.expires_at <= time.time():
            return _gateway_error(401, "401013", "Oauth token is not valid")
        if api_key != issued.client_id:
            return _gateway_error(403, "403003", "Api Key is invalid")
        org_id = request.header("x-gw-ims-org-id")
        if not org_id:
            return _gateway_error(400, "400003", "Missing x-gw-ims-org-id header")
        if client is not None and client.org_id is not None and org_id != client.org_id:
            return _gateway_error(403, "403025", "Profile is not valid")
        sandbox = request.header("x-sandbox-name")
        if not sandbox:
            return _problem(400, "Header x-sandbox-name is required")
        return org_id, sandbox

    # ---- Connectors ----------------------------------------------------------------------

    def _credentials(self, request: Request) -> Response:
        checked = self._gateway(request)
        if isinstance(checked, Response):
            return checked
        org_id, sandbox = checked
        cred_type = request.param("type")
        if cred_type not in CREDENTIAL_TYPES:
            return _problem(400, f"Invalid type {cred_type!r}; expected one of {', '.join(CREDENTIAL_TYPES)}")
        action = request.param("action")
        if self.store.faults().get("aep.dlz_provider") == "Amazon S3" and request.method in ("GET", "POST"):
            return json_response(200, _s3_answer(sandbox, cred_type))
        if request.method == "GET" and action is None:
            body = self.store.dlz_credentials(org_id, sandbox, cred_type, answer=True)
        elif request.method == "POST" and action == "refresh":
            body = self.store.refresh_dlz(org_id, sandbox, cred_type, answer=True)
            self.store.hold("after:aep.refresh")  # tests: the refresh took effect, its answer waits
        elif request.method in ("GET", "POST"):
            return _problem(400, f"Unsupported action {action!r}")
        else:
            return _method_not_allowed()
        return json_response(200, body)

    # ---- Flow Service --------------------------------------------------------------------

    def _connections(self, request: Request) -> Response:
        checked = self._gateway(request)
        if isinstance(checked, Response):
            return checked
        org_id, sandbox = checked
        first, _, sub = request.path[len(CONNECTIONS_PATH) + 1 :].partition("/")
        connection_id = first or None
        if sub:
            if sub == "explore" and request.method == "GET" and connection_id is not None:
                return self._explore(org_id, sandbox, connection_id, request)
            return _gateway_error(404, "404000", "Resource not found")
        if request.method == "POST" and connection_id is None:
            return self._create_connection(org_id, sandbox, request.body)
        if request.method == "PATCH" and connection_id is not None:
            return self._patch_connection(org_id, sandbox, connection_id, request)
        if request.method == "GET":
            mine = [c for c in self.store.connections() if c["org_id"] == org_id and c["sandbox_name"] == sandbox]
            if connection_id is not None:
                found = [c for c in mine if c["id"] == connection_id]
                if not found:
                    return _flow_error(404, "1304-404", f"Connection {connection_id} not found")
                return json_response(200, {"items": [_public_connection(found[0])]})
            filters = [_parse_property(p) for p in request.query.get("property", [])]
            if any(f is None for f in filters):
                return _flow_error(400, "1304-400", "Invalid property filter")
            items = [c for c in mine if all(_lookup(c, f[0]) == f[1] for f in filters if f)]
            return json_response(200, {"items": [_public_connection(c) for c in items], "_links": {}})
        return _method_not_allowed()

    def _create_connection(self, org_id: str, sandbox: str, raw: bytes) -> Response:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _flow_error(400, "1304-400", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _flow_error(400, "1304-400", "Request body must be a JSON object")
        for path in ("name", "auth.specName", "auth.params", "connectionSpec.id"):
            if _lookup(body, path) in (None, ""):
                return _flow_error(400, "1304-400", f"mandatory field '{path}' is not provided")
        if body["connectionSpec"]["id"] == DATABRICKS_CONNECTION_SPEC:
            problem = self._check_databricks_params(body["auth"]["params"])
            if problem:
                return _flow_error(400, "1304-400", problem)
        created = self.store.add_connection(org_id, sandbox, body)
        if self.store.take_connection_answer_lost():
            # The connection exists, but the gateway timed out before the answer came back.
            return Response(
                504, _HTML_PAGE.replace(b"502 Bad Gateway", b"504 Gateway Time-out"), {"Content-Type": "text/html"}
            )
        return json_response(201, created)

    def _patch_connection(self, org_id: str, sandbox: str, connection_id: str, request: Request) -> Response:
        """`PATCH /connections/{id}` (Adobe `help/sources/tutorials/api/update.md`): a JSON Patch
        list (`op` add/replace/remove, `path`, `value`) and the connection's etag in `If-Match`
        ("A PATCH request requires the use of the If-Match header"); answers the id and a new etag.
        A stale etag gets 412 (the status for a failed precondition; AEP's body is approximated)."""
        etag = request.header("if-match")
        if not etag:
            return _flow_error(400, "1304-400", "A PATCH request requires the If-Match header")
        found = [
            c
            for c in self.store.connections()
            if c["id"] == connection_id and (c["org_id"], c["sandbox_name"]) == (org_id, sandbox)
        ]
        if not found:
            return _flow_error(404, "1304-404", f"Connection {connection_id} not found")
        try:
            ops = json.loads(request.body or b"null")
        except ValueError:
            return _flow_error(400, "1304-400", "Request body is not valid JSON")
        if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o and "path" in o for o in ops):
            return _flow_error(400, "1304-400", "Request body must be a list of patch operations")
        body = {k: v for k, v in found[0].items() if k not in ("id", "etag", "org_id", "sandbox_name")}
        for op in ops:
            problem = _apply_patch(body, op)
            if problem:
                return _flow_error(400, "1304-400", problem)
        if body.get("connectionSpec", {}).get("id") == DATABRICKS_CONNECTION_SPEC:
            problem = self._check_databricks_params(body.get("auth", {}).get("params"))
            if problem:
                return _flow_error(400, "1304-400", problem)
        answer = self.store.update_connection(org_id, sandbox, connection_id, etag, body)
        if answer is None:
            return _flow_error(412, "1304-412", f"The If-Match etag {etag} is not the connection's current version")
        return json_response(200, answer)

    def _explore(self, org_id: str, sandbox: str, connection_id: str, request: Request) -> Response:
        """`GET /connections/{id}/explore?objectType=root` (Adobe `sources/api-tutorials/explore/tabular`):
        AEP reads the source with the connection's stored credentials and answers its tables. With
        a Databricks token that is expired, revoked or unknown, or a cluster that is gone, AEP
        cannot read it: 400 naming the cause (the body's wording is approximated)."""
        if request.param("objectType") != "root" and not request.param("object"):
            return _flow_error(400, "1304-400", "objectType must be root, or object must name a table")
        found = [
            c
            for c in self.store.connections()
            if c["id"] == connection_id and (c["org_id"], c["sandbox_name"]) == (org_id, sandbox)
        ]
        if not found:
            return _flow_error(404, "1304-404", f"Connection {connection_id} not found")
        params = (found[0].get("auth") or {}).get("params") or {}
        # A JDBC session starts a terminated cluster, so only a missing one or the token fails here.
        problem = self._check_databricks_params(params, need_running=False)
        if problem:
            return _flow_error(400, "1304-400", f"Connection test failed: {problem}")
        database = str(params.get("database") or "default")
        tables = [
            {"type": "table", "name": f"{database}.{t}", "path": f"{database}.{t}", "canPreview": True}
            for t in ("aep_profiles", "aep_events")
        ]
        return json_response(200, tables)

    def _check_databricks_params(self, params: Any, *, need_running: bool = True) -> str | None:
        if not isinstance(params, dict):
            return "auth.params must be an object"
        for name in ("domain", "clusterId", "accessToken"):
            if not params.get(name):
                return f"mandatory field 'auth.params.{name}' is not provided"
        # AEP requires the cluster to exist and be running when the connection is made.
        key = urlsplit(str(params["domain"])).hostname or ""
        try:
            cluster = self.store.get_cluster(key, str(params["clusterId"]))
        except DatabricksError:  # purged
            cluster = None
        if cluster is None:
            return f"Cluster {params['clusterId']} does not exist in workspace {params['domain']}"
        if need_running and cluster["state"] != "RUNNING":
            return f"Cluster {params['clusterId']} is not running (state {cluster['state']})"
        # AEP authenticates to the workspace with the connection's token: one that expired or
        # was revoked is refused there (403 "Invalid access token.", store/tokens.py).
        principal = self.store.principal_for_token(str(params["accessToken"]))
        if principal is None:
            return f"Databricks refused the access token (403 Invalid access token.) at {params['domain']}"
        # AEP's session on the cluster runs as the token's owner, and a dedicated cluster runs only
        # its assigned user's (or group's) commands (command_execution.py, sources there).
        assigned = cluster.get("single_user_name")
        dedicated = cluster.get("data_security_mode") in DEDICATED_MODES and assigned
        if dedicated and assigned not in principal_names(principal):
            return (
                f"Single-user check failed: user '{principal['userName']}' attempted to run a command on "
                f"single-user cluster {params['clusterId']}, but the single user of this cluster is '{assigned}'"
            )
        return None


def _s3_answer(sandbox: str, cred_type: str) -> dict[str, Any]:
    """The credentials answer of an AEP hosted on AWS: Adobe `data-landing-zone.md`
    ("Response on AWS": `credentials.awsAccessKeyId/awsSecretAccessKey/awsSessionToken`,
    `dlzPath.bucketName/dlzFolder`, `dlzProvider: "Amazon S3"`, `expiryTime` in epoch seconds)."""
    return {
        "credentials": {
            "awsAccessKeyId": "ASIA" + secrets.token_hex(8).upper(),
            "awsSecretAccessKey": secrets.token_urlsafe(30),
            "awsSessionToken": secrets.token_urlsafe(60),
        },
        "dlzPath": {"bucketName": f"dlz-prod-{sandbox}", "dlzFolder": cred_type.replace("_", "-")},
        "dlzProvider": "Amazon S3",
        "expiryTime": int(time.time()) + 12 * 3600,
    }


def _apply_patch(body: dict[str, Any], op: dict[str, Any]) -> str | None:
    parts = [p for p in str(op["path"]).split("/") if p]
    if not parts:
        return f"invalid patch path {op['path']!r}"
    node = body
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return f"invalid patch path {op['path']!r}"
        node = child
    if op["op"] in ("add", "replace"):
        node[parts[-1]] = op.get("value")
    elif op["op"] == "remove":
        node.pop(parts[-1], None)
    else:
        return f"unsupported patch op {op['op']!r}"
    return None


def _method_not_allowed() -> Response:
    return _gateway_error(405, "405000", "Method not allowed")


def _flow_error(status: int, code: str, detail: str) -> Response:
    return json_response(
        status,
        {
            "type": f"https://ns.adobe.com/aep/errors/FLOW-{code}",
            "status": status,
            "title": {400: "Bad Request", 404: "Not Found", 412: "Precondition Failed"}.get(status, "Error"),
            "detail": detail,
        },
        {"Content-Type": "application/problem+json"},
    )


def _parse_property(expr: str) -> tuple[str, str] | None:
    path, sep, value = expr.partition("==")
    return (path.strip(), value.strip()) if sep and path.strip() else None


def _lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _public_connection(record: dict[str, Any]) -> dict[str, Any]:
    # AEP never returns the stored access token.
    out = {k: v for k, v in record.items() if k not in ("org_id", "sandbox_name")}
    auth = dict(out.get("auth") or {})
    params = dict(auth.get("params") or {})
    params.pop("accessToken", None)
    auth["params"] = params
    out["auth"] = auth
    return out
