"""A Databricks service principal with OAuth M2M credentials (and an Azure one for the backend),
for the tests of real identities end to end."""

from __future__ import annotations

from tests.helpers.config import DATABRICKS_PAT
from tests.helpers.project import Project

SP_ID = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
SP_SECRET = "dose-SPsecret0value0ZXCVBNM0987"
ARM = {
    "ARM_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "ARM_CLIENT_SECRET": "arm-SECRET0for0the0backend0LKJH",
    "ARM_TENANT_ID": "99999999-8888-7777-6666-555555555555",
}


def oauth_env(project: Project, **extra: str) -> dict[str, str]:
    """The project's environment with OAuth M2M credentials for Databricks and no PAT."""
    env = project.env(DATABRICKS_CLIENT_ID=SP_ID, DATABRICKS_CLIENT_SECRET=SP_SECRET, **extra)
    del env["DATABRICKS_TOKEN"]
    return env


def no_oauth_secrets(*texts: str) -> None:
    """None of the service principal's, the backend's or the PAT's secrets, nor a sandbox OAuth token."""
    for text in texts:
        for secret in (SP_SECRET, DATABRICKS_PAT, ARM["ARM_CLIENT_SECRET"], "dose-sbx-"):
            assert secret not in text
