"""Bad input from either side, refused in one line before anything is written (issue 22, item 9):
a `secret_key` too long for the keys the tool derives from it, and an AEP SASToken that is not
a SAS query string (a newline or a quote would break the HCL string and the Spark value)."""

from __future__ import annotations

import pytest

from provisioner.sandbox.store.dlz import DATABRICKS_SOURCE, _dlz_key
from provisioner.sas.secret_value import _PROBE_SUFFIX, FINGERPRINT_MARK, fingerprint_key
from provisioner.secret import Secret
from tests.helpers.config import BASE_CONFIG, WORKSPACE_KEY
from tests.helpers.project import Project

DATABRICKS_KEY_LIMIT = 128  # Databricks: secret keys are at most 128 characters (Secrets API, put)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_the_longest_allowed_secret_key_leaves_room_for_derived_keys() -> None:
    key = "k" * 100
    assert len(key + _PROBE_SUFFIX) <= DATABRICKS_KEY_LIMIT
    assert len(fingerprint_key(key, Secret("sv=x&sig=y"))) <= DATABRICKS_KEY_LIMIT
    assert FINGERPRINT_MARK in fingerprint_key(key, Secret("sv=x&sig=y"))


@pytest.mark.parametrize("length", [101, 109])
def test_a_secret_key_too_long_for_the_write_check_is_refused_at_load(project: Project, length: int) -> None:
    project.config["sas"]["secret_key"] = "k" * length
    project.write_config()
    done = project.run("plan")
    assert done.returncode == 1
    (line,) = _errors(done.stderr)
    assert line.startswith(f"error: {project.config_path}:") and "sas.secret_key:" in line
    assert "at most 100 characters" in line
    assert not project.root().exists()  # nothing rendered
    assert project.store().list_scopes(WORKSPACE_KEY) == []


@pytest.mark.parametrize("bad", ["\n", '"', " ", "${x}"])
def test_an_aep_token_that_is_not_a_sas_query_string_is_refused(project: Project, bad: str) -> None:
    store = project.store()
    aep = BASE_CONFIG["aep"]
    good = store.dlz_credentials(aep["org_id"], aep["sandbox"])["SASToken"]
    hostile = good.replace("&sr=", f"{bad}&sr=", 1)
    with store._txn() as state:  # AEP answers a malformed token
        state["dlz"][_dlz_key(aep["org_id"], aep["sandbox"], DATABRICKS_SOURCE)]["SASToken"] = hostile
    done = project.run("plan")
    assert done.returncode == 1, done.stderr
    (line,) = _errors(done.stderr)
    assert "SASToken is not a SAS query string" in line
    assert good.split("sig=")[1] not in done.stderr + done.stdout  # never echoed
    assert not (project.root() / "clusters.tf").exists()
