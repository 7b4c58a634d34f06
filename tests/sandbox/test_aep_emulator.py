"""IMS, Connectors and Flow Service emulation, over a real socket."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import CLIENT_ID, WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import EMULATOR_ORG_ID, IMS_SCOPE, aep_headers, ims_token, sandbox_pat

CREDS = "/data/foundation/connectors/landingzone/credentials"
CONNECTIONS = "/data/foundation/flowservice/connections"
DATABRICKS_SPEC = "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b"
SAS_RE = re.compile(
    r"^sv=\d{4}-\d{2}-\d{2}&si=dlz-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"&sr=c&sp=racwdlm&sig=(?P<sig>[A-Za-z0-9%]+)$"
)


def _today() -> date:
    return datetime.now(UTC).date()


def creds(
    sb: Sandbox,
    http: requests.Session,
    token: str,
    *,
    refresh: bool = False,
    sandbox_name: str = "prod",
    cred_type: str = "dlz_databricks_source",
) -> requests.Response:
    params = {"type": cred_type}
    if refresh:
        params["action"] = "refresh"
    method = http.post if refresh else http.get
    return method(f"{sb.platform_url}{CREDS}", params=params, headers=aep_headers(token, sandbox_name), timeout=5)


# ---- IMS ---------------------------------------------------------------------------------


def test_ims_issues_bearer_token_for_registered_client(sandbox: Sandbox, http: requests.Session) -> None:
    resp = http.post(
        f"{sandbox.ims_url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": sandbox.client_secret.reveal(),
            "scope": IMS_SCOPE,
        },
        timeout=5,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert len(body["access_token"]) > 40


def test_ims_rejects_wrong_secret_unknown_client_and_missing_scope(sandbox: Sandbox, http: requests.Session) -> None:
    url = f"{sandbox.ims_url}/ims/token/v3"
    base = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": sandbox.client_secret.reveal(),
        "scope": IMS_SCOPE,
    }
    wrong = http.post(url, data={**base, "client_secret": "nope"}, timeout=5)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    unknown = http.post(url, data={**base, "client_id": "someone-else"}, timeout=5)
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_client"
    no_scope = http.post(url, data={k: v for k, v in base.items() if k != "scope"}, timeout=5)
    assert no_scope.status_code == 400
    assert no_scope.json()["error"] == "invalid_scope"


def test_given_client_secret_is_used(tmp_path: Any, http: requests.Session) -> None:
    with Sandbox(
        tmp_path,
        workspace_hosts=[WORKSPACE_HOST],
        client_id=CLIENT_ID,
        org_id=EMULATOR_ORG_ID,
        client_secret="s3cr3t-given",
        databricks_token="dapi-given",
    ) as sb:
        assert sb.client_secret.reveal() == "s3cr3t-given"
        assert str(sb.client_secret) == "***"
        assert sandbox_pat(sb) == "dapi-given"
        ims_token(sb, http)


# ---- gateway header checks ---------------------------------------------------------------------


def test_gateway_header_checks(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    url = f"{sandbox.platform_url}{CREDS}?type=dlz_databricks_source"
    good = aep_headers(token)

    def call(headers: dict[str, str]) -> requests.Response:
        return http.get(url, headers=headers, timeout=5)

    def without(name: str) -> dict[str, str]:
        return {k: v for k, v in good.items() if k != name}

    cases: list[tuple[dict[str, str], int, str | None]] = [
        (without("Authorization"), 403, "403010"),
        (without("x-api-key"), 403, "403000"),
        ({**good, "x-api-key": "not-the-client"}, 403, "403003"),
        ({**good, "Authorization": "Bearer forged"}, 401, "401013"),
        (without("x-gw-ims-org-id"), 400, "400003"),
        ({**good, "x-gw-ims-org-id": "OTHER@AdobeOrg"}, 403, "403025"),
    ]
    for headers, status, code in cases:
        resp = call(headers)
        assert resp.status_code == status, (headers.keys(), resp.text)
        assert resp.json()["error_code"] == code
    unauthorized = call(without("Authorization")).json()
    assert unauthorized["error_code"] == "403010"

    no_sandbox = call(without("x-sandbox-name"))
    assert no_sandbox.status_code == 400
    assert no_sandbox.json()["title"] == "BadRequestError"
    assert "x-sandbox-name" in no_sandbox.json()["detail"]

    bad_type = http.get(f"{sandbox.platform_url}{CREDS}?type=s3", headers=good, timeout=5)
    assert bad_type.status_code == 400
    assert bad_type.json()["status"] == 400

    assert call(good).status_code == 200


def test_expired_ims_token_is_rejected(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    assert creds(sandbox, http, token).status_code == 200
    sandbox.aep.expire_access_token(token)
    resp = creds(sandbox, http, token)
    assert resp.status_code == 401
    assert resp.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


# ---- credentials -------------------------------------------------------------------------------


def test_credentials_shape(sandbox: Sandbox, http: requests.Session) -> None:
    body = creds(sandbox, http, ims_token(sandbox, http)).json()
    assert set(body) == {"containerName", "SASToken", "storageAccountName", "SASUri", "expiryDate"}
    assert body["containerName"] == "dlz-databricks-container"
    assert re.fullmatch(r"sndbxdtln[a-z0-9]{15}", body["storageAccountName"])
    match = SAS_RE.match(body["SASToken"])
    assert match, body["SASToken"]
    sig = match.group("sig")
    assert "%2F" in sig and "%2B" in sig and sig.endswith("%3D")
    assert body["SASUri"] == (
        f"https://{body['storageAccountName']}.blob.core.windows.net/dlz-databricks-container?{body['SASToken']}"
    )
    assert date.fromisoformat(body["expiryDate"]) == _today() + timedelta(days=90)


def test_each_aep_sandbox_has_its_own_stable_landing_zone(
    sandbox: Sandbox, http: requests.Session, tmp_path: Any
) -> None:
    token = ims_token(sandbox, http)
    prod1 = creds(sandbox, http, token).json()
    prod2 = creds(sandbox, http, token).json()
    dev = creds(sandbox, http, token, sandbox_name="dev").json()
    assert prod1 == prod2  # a GET does not rotate
    assert dev["storageAccountName"] != prod1["storageAccountName"]
    assert dev["SASToken"] != prod1["SASToken"]
    # Another sandbox state directory (another machine, another run): same account name.
    with Sandbox(
        tmp_path / "other", workspace_hosts=[WORKSPACE_HOST], client_id=CLIENT_ID, org_id=EMULATOR_ORG_ID
    ) as other:
        again = creds(other, http, ims_token(other, http)).json()
    assert again["storageAccountName"] == prod1["storageAccountName"]
    assert again["SASToken"] != prod1["SASToken"]


def test_other_credential_types(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    body = creds(sandbox, http, token, cred_type="user_drop_zone").json()
    assert body["containerName"] == "dlz-user-container"
    assert body["SASToken"] != creds(sandbox, http, token).json()["SASToken"]


def _running_cluster_with(sandbox: Sandbox, body: dict[str, str]) -> str:
    key = f"fs.azure.sas.{body['containerName']}.{body['storageAccountName']}.blob.core.windows.net"
    return sandbox.store.add_cluster(WORKSPACE_KEY, {"spark_conf": {key: body["SASToken"]}})


def test_refresh_revokes_previous_token_at_once(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    old = creds(sandbox, http, token).json()
    cluster = _running_cluster_with(sandbox, old)
    assert sandbox.store.dlz_access(WORKSPACE_KEY, cluster) is True
    assert [t["SASToken"] for t in sandbox.store.valid_tokens()] == [old["SASToken"]]

    new = creds(sandbox, http, token, refresh=True)
    assert new.status_code == 200
    new_body = new.json()
    assert new_body["SASToken"] != old["SASToken"]
    assert new_body["storageAccountName"] == old["storageAccountName"]
    assert sandbox.store.dlz_access(WORKSPACE_KEY, cluster) is False
    assert [t["SASToken"] for t in sandbox.store.valid_tokens()] == [new_body["SASToken"]]
    assert creds(sandbox, http, token).json() == new_body

    assert sandbox.store.dlz_access(WORKSPACE_KEY, _running_cluster_with(sandbox, new_body)) is True


def test_post_without_refresh_action_is_rejected(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    resp = http.post(
        f"{sandbox.platform_url}{CREDS}",
        params={"type": "dlz_databricks_source"},
        headers=aep_headers(token),
        timeout=5,
    )
    assert resp.status_code == 400


def test_get_after_expiry_returns_a_fresh_token(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    old = creds(sandbox, http, token).json()
    cluster = _running_cluster_with(sandbox, old)
    sandbox.store.expire_dlz(EMULATOR_ORG_ID, "prod")
    assert sandbox.store.dlz_access(WORKSPACE_KEY, cluster) is False  # expired is not valid
    fresh = creds(sandbox, http, token).json()
    assert fresh["SASToken"] != old["SASToken"]
    assert date.fromisoformat(fresh["expiryDate"]) == _today() + timedelta(days=90)


# ---- fault knobs ---------------------------------------------------------------------------------


def test_429_knob_counts_down_with_and_without_retry_after(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    sandbox.store.set_faults(aep_status_429=2, aep_retry_after=7)
    first, second, third = (creds(sandbox, http, token) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "7"
    assert sandbox.store.faults()["aep.status_429"] == 0

    sandbox.store.set_faults(**{"aep.status_429": 1, "aep.retry_after": None})
    resp = creds(sandbox, http, token)
    assert resp.status_code == 429
    assert "Retry-After" not in resp.headers


def test_5xx_knob(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    sandbox.store.set_faults(aep_status_5xx=1, aep_status_5xx_code=504)
    assert creds(sandbox, http, token).status_code == 504
    assert creds(sandbox, http, token).status_code == 200


def test_html_knob_answers_a_proxy_page(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    sandbox.store.set_faults(aep_html=1)
    resp = creds(sandbox, http, token)
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.text.startswith("<html>")
    assert creds(sandbox, http, token).status_code == 200


def test_latency_knob(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    sandbox.store.set_faults(aep_latency_ms=300)
    started = time.monotonic()
    assert creds(sandbox, http, token).status_code == 200
    assert time.monotonic() - started >= 0.3
    sandbox.store.set_faults(aep_latency_ms=0)
    started = time.monotonic()
    creds(sandbox, http, token)
    assert time.monotonic() - started < 0.3


def test_expired_knob_hands_out_a_past_expiry_once(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    sandbox.store.set_faults(aep_expired=True)
    stale = creds(sandbox, http, token).json()
    assert date.fromisoformat(stale["expiryDate"]) < _today()
    assert sandbox.store.faults()["aep.expired"] == 0
    assert sandbox.store.valid_tokens() == []
    fresh = creds(sandbox, http, token).json()
    assert fresh["SASToken"] != stale["SASToken"]
    assert date.fromisoformat(fresh["expiryDate"]) > _today()


# ---- Flow Service ------------------------------------------------------------------------------------


def _connection_body(cluster_id: str, pat: str) -> dict[str, Any]:
    return {
        "name": "Databricks base connection",
        "description": "test",
        "auth": {
            "specName": "Access Token Authentication",
            "params": {"domain": WORKSPACE_HOST, "clusterId": cluster_id, "accessToken": pat, "database": "default"},
        },
        "connectionSpec": {"id": DATABRICKS_SPEC, "version": "1.0"},
    }


def test_a_connection_whose_token_is_not_the_dedicated_users_fails(sandbox: Sandbox, http: requests.Session) -> None:
    # AEP's session runs as the token's owner; a dedicated cluster runs only its user's commands
    # (databricks-sdk-py DataSecurityMode; the same rule as the emulator's command execution).
    token = ims_token(sandbox, http)
    anas = sandbox.store.add_cluster(
        WORKSPACE_KEY, {"data_security_mode": "SINGLE_USER", "single_user_name": "ana@example.com"}
    )
    created = http.post(
        f"{sandbox.platform_url}{CONNECTIONS}",
        json=_connection_body(anas, sandbox_pat(sandbox)),
        headers=aep_headers(token),
        timeout=5,
    )
    assert created.status_code == 400 and "Single-user check failed" in created.text, created.text
    sandbox.store.add_user("ana@example.com", "dapi-ana", admin=False)
    ok = http.post(
        f"{sandbox.platform_url}{CONNECTIONS}",
        json=_connection_body(anas, "dapi-ana"),
        headers=aep_headers(token),
        timeout=5,
    )
    assert ok.status_code == 201, ok.text


def test_flow_service_connections_create_and_list_mask_the_token(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    cluster = sandbox.store.add_cluster(WORKSPACE_KEY)
    pat = sandbox_pat(sandbox)
    created = http.post(
        f"{sandbox.platform_url}{CONNECTIONS}",
        json=_connection_body(cluster, pat),
        headers=aep_headers(token),
        timeout=5,
    )
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"id", "etag"}

    listed = http.get(
        f"{sandbox.platform_url}{CONNECTIONS}",
        params={"property": f"connectionSpec.id=={DATABRICKS_SPEC}"},
        headers=aep_headers(token),
        timeout=5,
    )
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [i["id"] for i in items] == [created.json()["id"]]
    assert items[0]["auth"]["params"]["clusterId"] == cluster
    assert pat not in listed.text
    assert "accessToken" not in items[0]["auth"]["params"]
    # The store keeps what was sent, for tests to check.
    assert sandbox.store.connections()[0]["auth"]["params"]["accessToken"] == pat

    other_spec = http.get(
        f"{sandbox.platform_url}{CONNECTIONS}",
        params={"property": "connectionSpec.id==x"},
        headers=aep_headers(token),
        timeout=5,
    )
    assert other_spec.json()["items"] == []
    other_sandbox = http.get(f"{sandbox.platform_url}{CONNECTIONS}", headers=aep_headers(token, "dev"), timeout=5)
    assert other_sandbox.json()["items"] == []


def test_flow_service_rejects_missing_fields_and_stopped_clusters(sandbox: Sandbox, http: requests.Session) -> None:
    token = ims_token(sandbox, http)
    stopped = sandbox.store.add_cluster(WORKSPACE_KEY, state="TERMINATED")
    body = _connection_body(stopped, "dapi-x")
    resp = http.post(f"{sandbox.platform_url}{CONNECTIONS}", json=body, headers=aep_headers(token), timeout=5)
    assert resp.status_code == 400
    assert "not running" in resp.json()["detail"]
    del body["name"]
    resp = http.post(f"{sandbox.platform_url}{CONNECTIONS}", json=body, headers=aep_headers(token), timeout=5)
    assert resp.status_code == 400
    assert "name" in resp.json()["detail"]
    assert sandbox.store.connections() == []
    no_auth = http.post(f"{sandbox.platform_url}{CONNECTIONS}", json=body, timeout=5)
    assert no_auth.status_code == 403
