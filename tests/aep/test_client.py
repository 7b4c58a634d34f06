"""The AEP client against a scripted HTTP server on 127.0.0.1 (real sockets, real urllib3 retries)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from provisioner.aep import ims
from provisioner.aep.client import AepClient, AepSecrets
from provisioner.clock import FakeClock
from provisioner.config.model import AepSettings
from provisioner.errors import ConfigError, CredentialsError
from provisioner.secret import Secret

TOKEN = "sv=2020-10-02&si=dlz-1&sr=c&sp=racwdlm&sig=ab%2Fcd%2Bef%3D"
FUTURE = (dt.date.today() + dt.timedelta(days=90)).isoformat()
GOOD = {
    "containerName": "dlz-databricks-container",
    "storageAccountName": "sndbxaccount1",
    "SASToken": TOKEN,
    "SASUri": f"https://sndbxaccount1.blob.core.windows.net/dlz-databricks-container?{TOKEN}",
    "expiryDate": FUTURE,
}


@dataclass
class Script:
    """Responses to hand out per path prefix, in order; the last one repeats."""

    replies: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def on(self, prefix: str, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self.replies.setdefault(prefix, []).append((status, headers or {"Content-Type": "application/json"}, raw))

    def reply(self, path: str) -> tuple[int, dict[str, str], bytes]:
        for prefix, queue in self.replies.items():
            if path.startswith(prefix):
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return 404, {}, b"{}"


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.requests.append((self.command, self.path, dict(self.headers), body))
            status, headers, raw = script.reply(self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ims.clear_cache()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    ims.clear_cache()


def client(url: str, clock: FakeClock | None = None, **settings: Any) -> AepClient:
    aep = AepSettings(
        org_id="1234ABCD5678@AdobeOrg",
        client_id="client123",
        sandbox="prod",
        platform_url=url,
        ims_url=url,
        **({"retries": 3, "max_retry_seconds": 5.0, "timeout_seconds": 5.0} | settings),
    )
    # The retries' waits are on the client's clock: a fake one, so nothing here sleeps.
    secrets = AepSecrets(client_secret=Secret("client-secret-value"), access_token=None)
    return AepClient(aep, secrets, clock=clock or FakeClock())


def ims_ok(script: Script) -> None:
    script.on("/ims/token/v3", 200, {"access_token": "ims-access-token-1", "token_type": "bearer", "expires_in": 86399})


def test_happy_path_sends_all_headers_and_keeps_token_verbatim(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 200, GOOD)
    creds = client(url).get_credentials()
    assert creds.sas_token.reveal() == TOKEN  # %2F %2B %3D untouched
    assert creds.container_name == "dlz-databricks-container" and creds.expiry_date.isoformat() == FUTURE
    assert creds.spark_conf_key == "fs.azure.sas.dlz-databricks-container.sndbxaccount1.blob.core.windows.net"
    method, path, headers, body = script.requests[0]
    assert method == "POST" and path == "/ims/token/v3"
    assert b"grant_type=client_credentials" in body and b"scope=" in body
    method, path, headers, _ = script.requests[1]
    assert method == "GET" and path.endswith("?type=dlz_databricks_source")
    assert headers["Authorization"] == "Bearer ims-access-token-1"
    assert headers["x-api-key"] == "client123" and headers["x-gw-ims-org-id"] == "1234ABCD5678@AdobeOrg"
    assert headers["x-sandbox-name"] == "prod" and headers["Content-Type"] == "application/json"


def test_ims_token_is_reused_within_its_lifetime(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 200, GOOD)
    aep = client(url)
    aep.get_credentials()
    aep.get_credentials()
    assert [p for _, p, _, _ in script.requests].count("/ims/token/v3") == 1


def test_ims_token_is_renewed_five_minutes_before_it_expires(server: tuple[str, Script]) -> None:
    """IMS says `expires_in` 86399 s; the token is asked for again once less than the five-minute
    margin is left, not before — on the client's clock, so the test waits a fake day."""
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 200, GOOD)
    clock = FakeClock()
    aep = client(url, clock)
    aep.get_credentials()
    clock.sleep(86399 - 300 - 1)
    aep.get_credentials()
    assert [p for _, p, _, _ in script.requests].count("/ims/token/v3") == 1  # still within its lifetime
    clock.sleep(1)
    aep.get_credentials()
    assert [p for _, p, _, _ in script.requests].count("/ims/token/v3") == 2


def test_refresh_is_a_post_with_action_refresh(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 200, GOOD)
    client(url).refresh_credentials()
    method, path, _, _ = script.requests[-1]
    assert method == "POST" and "action=refresh" in path


def test_429_with_retry_after_then_200(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 429, {"error_code": "429050"}, {"Retry-After": "1"})
    script.on("/data/foundation/connectors", 200, GOOD)
    clock = FakeClock()
    client(url, clock).get_credentials()
    assert clock.sleeps == [1.0]  # Retry-After honoured: waited exactly what the gateway asked
    assert sum(1 for _, p, _, _ in script.requests if p.startswith("/data")) == 2


def test_5xx_burst_then_200(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    for status in (500, 502, 503):
        script.on("/data/foundation/connectors", status, {"title": "oops"})
    script.on("/data/foundation/connectors", 200, GOOD)
    assert client(url, retries=4).get_credentials().storage_account_name == "sndbxaccount1"


def test_persistent_5xx_is_one_clear_error_within_the_retry_budget(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 503, {"title": "busy"}, {"Retry-After": "30"})
    clock = FakeClock()
    with pytest.raises(CredentialsError) as info:
        client(url, clock, retries=10, max_retry_seconds=1.5).get_credentials()
    assert clock.sleeps == [1.5]  # Retry-After: 30 capped by the budget, then given up
    assert "503" in str(info.value) and "try again later" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "hint"),
    [
        (401, {"error_code": "401013", "message": "Oauth token is not valid"}, "AEP_CLIENT_SECRET"),
        (403, {"error_code": "403003", "message": "Api Key is invalid"}, "has access to sandbox 'prod'"),
        (404, {"title": "NotFound"}, "check aep.sandbox"),
    ],
)
def test_4xx_name_the_likely_cause(server: tuple[str, Script], status: int, body: dict[str, str], hint: str) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", status, body)
    with pytest.raises(CredentialsError) as info:
        client(url).get_credentials()
    assert f"AEP answered {status}" in str(info.value) and hint in str(info.value)
    assert "\n" not in str(info.value)


def test_ims_rejects_secret(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("/ims/token/v3", 401, {"error": "invalid_client", "error_description": "invalid client_secret"})
    with pytest.raises(CredentialsError) as info:
        client(url).get_credentials()
    assert "IMS answered 401 (invalid_client" in str(info.value)
    assert "client-secret-value" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>Bad gateway</body></html>", "text/html body instead of JSON"),
        (b"{not json", "instead of JSON"),
        (json.dumps({"containerName": "c"}).encode(), "lacks storageAccountName, SASToken, expiryDate"),
        (json.dumps(GOOD | {"expiryDate": "05/07/2025"}).encode(), "is not a YYYY-MM-DD date"),
        (json.dumps(GOOD | {"expiryDate": "2020-01-01"}).encode(), "expired on 2020-01-01"),
    ],
)
def test_malformed_bodies(server: tuple[str, Script], body: bytes, message: str) -> None:
    url, script = server
    ims_ok(script)
    content_type = "text/html" if body.startswith(b"<") else "application/json"
    script.on("/data/foundation/connectors", 200, body, {"Content-Type": content_type})
    with pytest.raises(CredentialsError, match=message.replace("(", r"\(")) as info:
        client(url).get_credentials()
    assert "ab%2Fcd" not in str(info.value)


def test_connection_refused_is_one_line() -> None:
    ims.clear_cache()
    with pytest.raises(CredentialsError, match=r"cannot connect to http://127\.0\.0\.1:9/ims/token/v3"):
        client("http://127.0.0.1:9", retries=1, max_retry_seconds=0.5).get_credentials()


def test_ready_access_token_skips_ims(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("/data/foundation/connectors", 200, GOOD)
    aep = AepClient(client(url).settings, AepSecrets(client_secret=None, access_token=Secret("ready-token-abc")))
    aep.get_credentials()
    assert [p for _, p, _, _ in script.requests] == [
        "/data/foundation/connectors/landingzone/credentials?type=dlz_databricks_source"
    ]


def test_no_secret_at_all_is_a_config_error(server: tuple[str, Script]) -> None:
    url, _ = server
    aep = AepClient(client(url).settings, AepSecrets(client_secret=None, access_token=None))
    with pytest.raises(ConfigError, match="AEP_CLIENT_SECRET is not set"):
        aep.get_credentials()


def test_credentials_never_print_the_token(server: tuple[str, Script]) -> None:
    url, script = server
    ims_ok(script)
    script.on("/data/foundation/connectors", 200, GOOD)
    creds = client(url).get_credentials()
    for text in (repr(creds), str(creds), f"{creds}", repr(creds.sas_token), f"{creds.sas_token}"):
        assert "ab%2Fcd" not in text and "ab/cd" not in text
    assert "sig=***" in repr(creds)
