"""OAuth M2M as a workspace answers it (no bearer token needed for these three paths).

`GET /.well-known/databricks-config` (host metadata naming the OIDC root, databricks-sdk-py
`config.py` `_resolve_host_metadata`, `oauth.py` `HostMetadata`), then
`GET /oidc/.well-known/oauth-authorization-server` (discovery, `oauth.py`
`get_endpoints_from_url`) and `POST /oidc/v1/token` (client_credentials, client id + secret in
HTTP Basic auth as the SDK's `ClientCredentials(use_header=True)` sends them, or in the form),
answering an expiring token (store/identities.py).
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

from provisioner.sandbox.store import SandboxStore
from provisioner.sandbox.wire import Request, Response, json_response
from provisioner.sandbox.workspace_common import WORKSPACE_PREFIX, error

DISCOVERY_PATH = "/oidc/.well-known/oauth-authorization-server"
HOST_METADATA_PATH = "/.well-known/databricks-config"
TOKEN_PATH = "/oidc/v1/token"


def host_metadata(request: Request, ws: str) -> Response:
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


def discovery(request: Request, ws: str) -> Response:
    origin = f"http://{request.header('host') or '127.0.0.1'}{WORKSPACE_PREFIX}{ws}"
    return json_response(
        200,
        {
            "issuer": f"{origin}/oidc",
            "authorization_endpoint": f"{origin}/oidc/v1/authorize",
            "token_endpoint": f"{origin}{TOKEN_PATH}",
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        },
    )


def token(store: SandboxStore, request: Request) -> Response:
    if request.method != "POST":
        return error(405, "BAD_REQUEST", f"Method {request.method} not allowed for {TOKEN_PATH}")
    form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
    client_id, client_secret = _basic_auth(request.header("authorization"))
    client_id = client_id or form.get("client_id")
    client_secret = client_secret or form.get("client_secret")
    if form.get("grant_type") != "client_credentials":
        return json_response(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
    issued = store.issue_oauth_token(client_id or "", client_secret or "")
    if issued is None:
        return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
    token, seconds = issued
    return json_response(
        200,
        {"access_token": token, "token_type": "Bearer", "expires_in": seconds, "scope": "all-apis"},
    )


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(header[6:].strip()).decode()
    except ValueError:
        return None, None
    client_id, _, client_secret = raw.partition(":")
    return client_id, client_secret
