"""Unified-auth resolution with databricks-sdk's own Config: which identity a run uses,
the conflict rule the provider shares, and the tool's one resolution of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provisioner.config.model import AuthSettings
from provisioner.databricks.identity import connect, predicted_auth_type, sdk_config
from provisioner.errors import ConfigError
from provisioner.sandbox import Sandbox
from provisioner.secret import mask
from tests.helpers.config import WORKSPACE_HOST

PAT = "dapi-identity-test-pat-0123456789abcdef"
SP_ID = "8c5e2f0a-3b7d-4e1f-9a6c-2d4b8e0f1a3c"
SP_SECRET = "dose-identity-test-secret-0123456789"
ARM = {
    "ARM_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "ARM_CLIENT_SECRET": "arm-secret-value-xyz",
    "ARM_TENANT_ID": "t",
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(
        tmp_path / "sandbox",
        workspace_hosts=[WORKSPACE_HOST],
        databricks_token=PAT,
        databricks_client=(SP_ID, SP_SECRET),
    ) as sb:
        yield sb


def test_pat_alone(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", PAT)
    _, who = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())
    assert (who.auth_type, who.user_name, who.note) == ("pat", "sandbox-user@example.com", "")


def test_oauth_m2m_alone_fetches_a_token_from_the_workspace(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", SP_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", SP_SECRET)
    client, who = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())
    assert who.auth_type == "oauth-m2m" and who.user_name == SP_ID and who.display_name.startswith("sp-")
    assert client.list_clusters() == []


def test_a_wrong_oauth_secret_fails_in_one_line_without_the_secret(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", SP_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "dose-not-the-right-secret-000")
    with pytest.raises(ConfigError) as err:
        connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())
    assert "oauth-m2m" in str(err.value) and "dose-not-the-right-secret-000" not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("databricks", "pinned"),
    [
        ({"DATABRICKS_TOKEN": PAT}, "pat"),
        ({"DATABRICKS_CLIENT_ID": SP_ID, "DATABRICKS_CLIENT_SECRET": SP_SECRET}, "oauth-m2m"),
    ],
)
def test_arm_for_the_backend_beside_databricks_credentials(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, databricks: dict[str, str], pinned: str
) -> None:
    for k, v in {**ARM, **databricks}.items():
        monkeypatch.setenv(k, v)
    # The SDK on its own refuses, exactly as the provider does ...
    from databricks.sdk.config import Config

    with pytest.raises(ValueError, match="more than one authorization method configured: azure and"):
        Config(host=sandbox.workspace_url(WORKSPACE_HOST))
    # ... the tool pins the Databricks-specific method and says so.
    _, who = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())
    assert who.auth_type == pinned and "pinned" in who.note
    assert who.terraform_env(AuthSettings()) == {"DATABRICKS_AUTH_TYPE": pinned}


def test_two_databricks_methods_are_an_error_naming_the_fix(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"DATABRICKS_TOKEN": PAT, "DATABRICKS_CLIENT_ID": SP_ID, "DATABRICKS_CLIENT_SECRET": SP_SECRET}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        sdk_config(sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())
    message = str(err.value)
    assert "more than one authorization method configured: oauth and pat" in message
    assert "databricks.auth_type" in message and SP_SECRET not in message and PAT not in message


def test_configured_auth_type_wins(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"DATABRICKS_TOKEN": PAT, "DATABRICKS_CLIENT_ID": SP_ID, "DATABRICKS_CLIENT_SECRET": SP_SECRET}.items():
        monkeypatch.setenv(k, v)
    _, who = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings(auth_type="oauth-m2m"))
    assert who.auth_type == "oauth-m2m" and who.user_name == SP_ID


def test_a_databrickscfg_profile(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = tmp_path / "home" / ".databrickscfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"[ci]\nclient_id = {SP_ID}\nclient_secret = {SP_SECRET}\n")
    _, who = connect(WORKSPACE_HOST, sandbox.workspace_url(WORKSPACE_HOST), AuthSettings(profile="ci"))
    assert (
        who.auth_type == "oauth-m2m"
        and who.terraform_env(AuthSettings(profile="ci"))["DATABRICKS_CONFIG_PROFILE"] == "ci"
    )


def test_no_credentials_at_all(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="no credentials found"):
        sdk_config(sandbox.workspace_url(WORKSPACE_HOST), AuthSettings())


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (ARM, "azure-client-secret"),
    ],
)
def test_azure_methods_resolve_offline_as_far_as_they_can(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """Entra ID is not emulated (its login endpoints are fixed per Azure cloud in the SDK):
    what can be shown offline is that the attributes select that method and no other."""
    from databricks.sdk.config import Config

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    attrs = {a.auth for a in Config.attributes() if a.env in env and a.auth}
    assert attrs == {"azure"}
    with pytest.raises(ValueError) as err:
        Config(host="http://127.0.0.1:9", auth_type=expected, retry_timeout_seconds=1, http_timeout_seconds=1)
    assert expected in str(err.value) and "more than one" not in str(err.value)
    assert "arm-secret-value-xyz" not in mask(str(err.value))


@pytest.mark.parametrize(
    ("env", "settings"),
    [
        ({"ARM_USE_MSI": "true", "ARM_CLIENT_ID": "11111111-2222-3333-4444-555555555555"}, AuthSettings()),
        ({"ARM_USE_MSI": "true"}, AuthSettings(auth_type="azure-msi")),
        ({"DATABRICKS_AUTH_TYPE": "azure-msi", "ARM_USE_MSI": "true"}, AuthSettings()),
    ],
)
def test_a_managed_identity_is_refused_in_one_line_naming_what_works(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], settings: AuthSettings
) -> None:
    """databricks-sdk-py has no azure-msi strategy (credentials_provider.py): the tool's own calls
    could not authenticate, so it says so instead of a generic "no credentials found"."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        sdk_config(sandbox.workspace_url(WORKSPACE_HOST), settings)
    (line,) = str(err.value).splitlines()
    assert "managed identity (azure-msi / ARM_USE_MSI) cannot be used" in line
    assert "ARM_CLIENT_SECRET" in line and "OAuth M2M" in line


def test_azure_msi_is_not_an_auth_type_provision_yaml_offers(tmp_path: Path) -> None:
    from provisioner.config.model import load_config
    from tests.helpers.config import BASE_CONFIG

    doc = {**BASE_CONFIG, "databricks": {**BASE_CONFIG["databricks"], "auth_type": "azure-msi"}}
    path = tmp_path / "provision.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"databricks\.auth_type: \"azure-msi\" is not allowed"):
        load_config(path, environ={})


_M2M = {"DATABRICKS_CLIENT_ID": SP_ID, "DATABRICKS_CLIENT_SECRET": SP_SECRET}


@pytest.mark.parametrize(
    ("environ", "settings"),
    [
        ({"DATABRICKS_TOKEN": PAT}, AuthSettings()),
        (_M2M, AuthSettings()),
        ({**ARM, "DATABRICKS_TOKEN": PAT}, AuthSettings()),
        ({**ARM, **_M2M}, AuthSettings()),
        ({"DATABRICKS_TOKEN": PAT, **_M2M}, AuthSettings(auth_type="oauth-m2m")),
        ({"DATABRICKS_TOKEN": PAT, **_M2M, "DATABRICKS_AUTH_TYPE": "pat"}, AuthSettings()),
    ],
)
def test_the_guessed_auth_type_is_the_one_the_sdk_resolves(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], settings: AuthSettings
) -> None:
    """provisioner.operations.plan_ahead starts Terraform with the guess; it must agree with the SDK."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    guess = predicted_auth_type(settings, environ)
    config, _ = sdk_config(sandbox.workspace_url(WORKSPACE_HOST), settings)
    assert guess is not None and guess == str(config.auth_type)


@pytest.mark.parametrize(
    ("environ", "settings"),
    [
        (ARM, AuthSettings()),  # which Azure method is the SDK's to find out
        ({"DATABRICKS_TOKEN": PAT, **_M2M}, AuthSettings()),  # an error, the SDK's words
        ({"DATABRICKS_TOKEN": PAT}, AuthSettings(profile="ci")),  # the profile's file decides
        ({"DATABRICKS_TOKEN": PAT, "DATABRICKS_CONFIG_PROFILE": "ci"}, AuthSettings()),
        ({}, AuthSettings()),
    ],
)
def test_no_guess_where_the_configuration_leaves_a_choice(environ: dict[str, str], settings: AuthSettings) -> None:
    assert predicted_auth_type(settings, environ) is None
