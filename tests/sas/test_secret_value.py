"""provisioner.sas.secret_value against the sandbox's workspace emulator: freshness, fingerprints, scope checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.aep.landingzone import DlzCredentials
from provisioner.config.model import Environment, SasSettings
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.errors import ProvisionError
from provisioner.sandbox import Sandbox
from provisioner.sas import secret_value
from provisioner.secret import Secret
from provisioner.terraform import TerraformState
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import sandbox_workspace

OLD = "sv=2020-10-02&si=dlz-0&sr=c&sp=racwdlm&sig=OLDsig%2Fvalue%2B1111%3D"
NEW = "sv=2020-10-02&si=dlz-1&sr=c&sp=racwdlm&sig=NEWsig%2Fvalue%2B2222%3D"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path, workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[WorkspaceClient]:
    with sandbox_workspace(sandbox, WORKSPACE_HOST) as c:
        yield c


def _env(tmp_path: Path, **sas: object) -> Environment:
    return Environment(
        name="default",
        aep=None,  # type: ignore[arg-type]  # not needed here
        databricks_host=WORKSPACE_HOST,
        sas=dataclasses.replace(SasSettings(), **sas),  # type: ignore[arg-type]
        clusters=(),
        root_dir=tmp_path,
        backend=None,  # type: ignore[arg-type]
    )


def _creds(token: str) -> DlzCredentials:
    return DlzCredentials("dlz-databricks-container", "acct", Secret(token), dt.date(2099, 1, 1))


def test_freshness_follows_what_the_tool_wrote(tmp_path: Path, sandbox: Sandbox, client: WorkspaceClient) -> None:
    env = _env(tmp_path)
    client.create_scope("aep-dlz")
    assert secret_value.read_freshness(client, env, _creds(OLD)).present is False

    secret_value.write_secret(client, env, _creds(OLD))
    assert sandbox.store.secret_value(WORKSPACE_KEY, "aep-dlz", "dlz-sas-token") == OLD
    assert secret_value.read_freshness(client, env, _creds(OLD)).holds_current is True
    stale = secret_value.read_freshness(client, env, _creds(NEW))  # AEP refreshed outside the tool
    assert stale.holds_current is False and "older token" in stale.describe()

    secret_value.write_secret(client, env, _creds(NEW))
    keys = [s["key"] for s in client.list_secrets("aep-dlz")]
    assert keys == ["dlz-sas-token", secret_value.fingerprint_key("dlz-sas-token", Secret(NEW))]  # old one dropped
    assert OLD not in "".join(keys) and NEW not in "".join(keys) and "sig" not in "".join(keys)
    assert secret_value.read_freshness(client, env, _creds(NEW)).holds_current is True

    time.sleep(0.01)
    client.put_secret("aep-dlz", "dlz-sas-token", Secret("someone else's value"))
    outside = secret_value.read_freshness(client, env, _creds(NEW))
    assert outside.holds_current is None and outside.rewritten_outside


def test_scope_checks_are_one_line_each(tmp_path: Path, client: WorkspaceClient) -> None:
    nothing = TerraformState()
    managed = TerraformState(
        {"resources": [{"mode": "managed", "type": "databricks_secret_scope", "name": "dlz", "instances": [{}]}]}
    )
    assert secret_value.check_scope(client, _env(tmp_path), nothing) is False  # apply creates it
    with pytest.raises(ProvisionError, match="run `provision apply` first"):
        secret_value.check_scope(client, _env(tmp_path), nothing, must_exist=True)
    with pytest.raises(ProvisionError, match=r"does not exist .* sas.manage_scope is false"):
        secret_value.check_scope(client, _env(tmp_path, manage_scope=False), nothing)
    client.create_scope("aep-dlz")
    with pytest.raises(ProvisionError, match="already exists and is not managed by this environment"):
        secret_value.check_scope(client, _env(tmp_path), nothing)
    assert secret_value.check_scope(client, _env(tmp_path), managed) is True
    assert secret_value.check_scope(client, _env(tmp_path, manage_scope=False), nothing) is True
    client.create_scope("vault", backend_type="AZURE_KEYVAULT")
    kv = _env(tmp_path, secret_scope="vault", manage_scope=False)
    with pytest.raises(ProvisionError, match="Azure Key Vault-backed") as err:
        secret_value.check_scope(client, kv, nothing)
    assert "\n" not in str(err.value)
    with pytest.raises(ProvisionError, match=r"cannot write secret vault/dlz-sas-token: .* Databricks-backed"):
        secret_value.write_secret(client, kv, _creds(NEW))


def test_destroy_keeps_only_the_scope() -> None:
    doc = {
        "resources": [
            {"mode": "managed", "type": "databricks_secret_scope", "name": "dlz", "instances": [{}]},
            {"mode": "managed", "type": "databricks_cluster", "name": "aep-ingest", "instances": [{}]},
            {"mode": "data", "type": "databricks_current_user", "name": "me", "instances": [{}]},
        ]
    }
    assert secret_value.destroy_targets(TerraformState(doc)) == ("databricks_cluster.aep-ingest",)
