"""`provision connect`: the AEP base connection, created once and reused, on a running cluster."""

from __future__ import annotations

import json

from provisioner.terraform import TerraformState
from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT, WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.project import Project, applied

SPEC = "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b"


def test_connect_twice_makes_one_connection_and_starts_a_terminated_cluster(project: Project) -> None:
    applied(project)
    store = project.store()
    cid = TerraformState(json.loads((project.root() / "terraform.tfstate").read_text())).clusters()["aep-explore"]
    store.delete_cluster(WORKSPACE_KEY, cid)  # terminate: AEP needs it running

    first = project.run("connect", "--cluster", "aep-explore", "--catalog", "main")
    assert first.returncode == 0, first.stderr
    assert f"starting aep-explore ({cid})" in first.stderr
    connection_id = first.stdout.strip().splitlines()[-1]
    assert store.get_cluster(WORKSPACE_KEY, cid)["state"] == "RUNNING"

    second = project.run("connect", "--cluster", "aep-explore", "--json")
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    token = doc.pop("token")
    assert doc == {
        "environment": "default",
        "cluster": "aep-explore",
        "clusterId": cid,
        "domain": WORKSPACE_HOST,
        "connectionId": connection_id,
        "created": False,
        "repointed": False,
    }
    (stored,) = store.connections()
    assert stored["id"] == connection_id
    assert stored["connectionSpec"]["id"] == SPEC and stored["auth"]["specName"] == "Access Token Authentication"
    params = stored["auth"]["params"]
    minted = params.pop("accessToken")
    assert params == {
        "domain": WORKSPACE_HOST,
        "clusterId": cid,
        "database": "default",
        "catalog": "main",
    }
    # AEP gets a token of its own, never the run's PAT; its id is on the connection, not its value.
    assert minted != DATABRICKS_PAT and store.principal_for_token(minted) is not None
    assert token["tokenId"] in stored["description"] and minted not in stored["description"]
    for done in (first, second):
        assert DATABRICKS_PAT not in done.stdout + done.stderr
        assert minted not in done.stdout + done.stderr
        assert AEP_SECRET not in done.stdout + done.stderr

    other = project.run("connect", "--cluster", "aep-ingest", "--json")
    assert other.returncode == 0 and json.loads(other.stdout)["created"] is True
    assert len(store.connections()) == 2


def test_bad_input_is_one_line(project: Project) -> None:
    unknown = project.run("connect", "--cluster", "nope")
    assert unknown.returncode == 1 and "no such cluster" in unknown.stderr
    not_applied = project.run("connect")
    assert not_applied.returncode == 1 and "not created yet" in not_applied.stderr
    assert project.store().connections() == []
