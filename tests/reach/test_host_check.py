"""The host-side DLZ check with the Azure SDK against the sandbox's storage: Azurite (real Azure
Blob semantics: service SAS bound to a stored access policy) and the built-in oracle."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from provisioner.aep.landingzone import DlzCredentials
from provisioner.reach.host_check import EXPIRED, OK, REVOKED, WRONG_ACCOUNT, check_from_host
from provisioner.sandbox import Sandbox
from provisioner.secret import Secret
from tests.helpers.sandbox import EMULATOR_ORG_ID, credentials


@pytest.fixture
def sandbox(tmp_path: Path, dlz_backend: str) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "sandbox", dlz_backend=dlz_backend) as sb:
        yield sb


def one_char_altered(token: str) -> str:
    at = token.index("&sig=") + 5
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def assert_masked(text: str, token: str) -> None:
    sig = re.search(r"sig=([^&]+)", token).group(1)  # type: ignore[union-attr]
    for form in (token, sig, unquote(sig)):
        assert form not in text


def test_current_token_lists_the_container(sandbox: Sandbox) -> None:
    body = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    check = check_from_host(routing=sandbox.blob_hosts(), creds=credentials(body))
    assert check.ok and check.cause == OK, check
    assert body["containerName"] in check.detail


def test_the_token_is_a_service_sas_bound_to_a_stored_access_policy(sandbox: Sandbox) -> None:
    token = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")["SASToken"]
    assert re.fullmatch(r"sv=[0-9-]+&si=dlz-[0-9a-f-]{36}&sr=c&sp=racwdlm&sig=[A-Za-z0-9%]+", token)


def test_a_refresh_revokes_the_old_token_at_once(sandbox: Sandbox) -> None:
    old = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    assert check_from_host(routing=sandbox.blob_hosts(), creds=credentials(old)).ok
    new = sandbox.store.refresh_dlz(EMULATOR_ORG_ID, "prod")
    check = check_from_host(routing=sandbox.blob_hosts(), creds=credentials(old))
    assert not check.ok and check.cause == REVOKED, check
    assert check.detail.startswith("403 "), check
    assert "refresh" in check.detail
    assert_masked(check.detail, old["SASToken"])
    assert check_from_host(routing=sandbox.blob_hosts(), creds=credentials(new)).ok


def test_a_refresh_by_another_process_is_honoured(sandbox: Sandbox, tmp_path: Path) -> None:
    from provisioner.sandbox.store import SandboxStore

    old = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    assert check_from_host(routing=sandbox.blob_hosts(), creds=credentials(old)).ok
    SandboxStore(tmp_path / "sandbox").refresh_dlz(EMULATOR_ORG_ID, "prod")  # what `provision sandbox refresh` does
    assert check_from_host(routing=sandbox.blob_hosts(), creds=credentials(old)).cause == REVOKED


def test_token_altered_by_one_character_fails_with_a_clear_line(sandbox: Sandbox) -> None:
    body = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    altered = one_char_altered(body["SASToken"])
    check = check_from_host(routing=sandbox.blob_hosts(), creds=credentials(body, SASToken=altered))
    assert not check.ok and check.cause == REVOKED, check
    assert "\n" not in check.detail
    assert_masked(check.detail, altered)
    assert_masked(check.detail, body["SASToken"])


def test_expired_policy_fails_as_expired(sandbox: Sandbox) -> None:
    sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    sandbox.store.expire_dlz(EMULATOR_ORG_ID, "prod")  # the stored access policy ends yesterday
    (record,) = sandbox.store.dlz_records()
    check = check_from_host(routing=sandbox.blob_hosts(), creds=credentials(record))
    assert not check.ok and check.cause == EXPIRED, check
    assert record["expiryDate"] in check.detail and "rotate" in check.detail
    assert_masked(check.detail, record["SASToken"])


def test_wrong_account_fails_as_wrong_account(sandbox: Sandbox) -> None:
    body = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    check = check_from_host(
        routing=sandbox.blob_hosts(), creds=credentials(body, storageAccountName="sndbxdtlnnosuchaccount0")
    )
    assert not check.ok and check.cause == WRONG_ACCOUNT, check
    assert "sndbxdtlnnosuchaccount0" in check.detail
    assert_masked(check.detail, body["SASToken"])


def test_the_backend_is_the_one_asked_for(sandbox: Sandbox, dlz_backend: str) -> None:
    assert sandbox.dlz.name == dlz_backend
    assert list(sandbox.blob_hosts()) == ["https://*.blob.core.windows.net"]


def test_ci_installs_the_pinned_azurite() -> None:
    from provisioner.sandbox.azurite import AZURITE_VERSION
    from tests.helpers.config import REPO

    assert f"AZURITE_VERSION={AZURITE_VERSION}" in (REPO / ".ci" / "run").read_text()


def test_an_unexpected_answer_is_one_masked_line_even_when_the_sdk_echoes_the_url() -> None:
    """Azure SDK errors carry the request URL — with the SAS in its query — in their message."""
    from azure.core.exceptions import HttpResponseError

    from provisioner.reach.host_check import ERROR, _diagnose

    token = "sv=2025-01-05&si=dlz-0&sr=c&sp=racwdlm&sig=AbC%2Fdef%2Bghi0123456789xyz%3D"
    creds = DlzCredentials("c", "acct", Secret(token), dt.date.today() + dt.timedelta(days=9))
    url = f"https://acct.blob.core.windows.net/c?restype=container&comp=list&{token}"
    exc = HttpResponseError(message=f"Operation returned an invalid status 'Bad Gateway' for {url}\nContent: <html>")
    exc.status_code = 502
    check = _diagnose(exc, creds, dt.datetime.now(dt.UTC))
    assert not check.ok and check.cause == ERROR
    assert check.detail.startswith("502 ") and "\n" not in check.detail
    assert_masked(check.detail, token)
    assert "***" in check.detail
