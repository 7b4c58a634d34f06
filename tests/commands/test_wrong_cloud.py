"""AEP hosted on AWS answers with an S3 landing zone: one clear line, nothing rendered or applied."""

from __future__ import annotations

import pytest

from provisioner.aep.landingzone import parse_credentials
from provisioner.errors import CredentialsError
from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.project import Project

ACCOUNT, CONTAINER = "sndbxdtlnabc123", "dlz-databricks-container"
TOKEN = "sv=2020-10-02&si=dlz-1&sr=c&sp=racwdlm&sig=abc%2Fdef%3D"


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_aep_on_aws_says_the_databricks_source_needs_azure(project: Project) -> None:
    project.store().set_faults(aep_dlz_provider="Amazon S3")
    for command in (("plan",), ("apply", "--auto-approve"), ("credentials",)):
        done = project.run(*command)
        assert done.returncode == 1, done.stderr
        (line,) = _errors(done.stderr)
        assert "Amazon S3" in line and "needs an Azure-hosted Experience Platform" in line
        assert "may have changed" not in line and "Traceback" not in done.stderr
    assert not project.root().exists()  # nothing rendered, terraform never ran
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def _body(**overrides: str) -> dict[str, object]:
    body: dict[str, object] = {
        "containerName": CONTAINER,
        "storageAccountName": ACCOUNT,
        "SASToken": TOKEN,
        "SASUri": f"https://{ACCOUNT}.blob.core.windows.net/{CONTAINER}?{TOKEN}",
        "expiryDate": "2999-01-01",
    }
    body.update(overrides)
    return body


def test_sas_uri_must_name_the_same_account_and_container() -> None:
    assert parse_credentials(_body()).storage_account_name == ACCOUNT
    bad_host = f"https://otheraccount.blob.core.windows.net/{CONTAINER}?{TOKEN}"
    bad_container = f"https://{ACCOUNT}.blob.core.windows.net/elsewhere?{TOKEN}"
    for uri in (bad_host, bad_container):
        with pytest.raises(CredentialsError, match="SASUri points at") as info:
            parse_credentials(_body(SASUri=uri))
        assert "sig=" not in str(info.value)  # the query is the token: never shown
