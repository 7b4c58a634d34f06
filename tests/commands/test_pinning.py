"""Pinning and the 30-day purge end to end: pinned by default, the pin limit, status warnings,
a purged cluster re-created with its AEP connection repointed, and stale import ids."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.helpers.config import BASE_CONFIG, ORG, WORKSPACE_KEY
from tests.helpers.project import Project, applied

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _ids(project: Project) -> dict[str, str]:
    state = json.loads((project.root() / "terraform.tfstate").read_text())
    return {
        r["name"]: r["instances"][0]["attributes"]["cluster_id"]
        for r in state["resources"]
        if r["type"] == "databricks_cluster"
    }


def _terminate(project: Project, cluster_id: str) -> None:
    store = project.store()
    store.delete_cluster(WORKSPACE_KEY, cluster_id)
    deadline = time.monotonic() + 10
    while store.get_cluster(WORKSPACE_KEY, cluster_id)["state"] != "TERMINATED":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _status(project: Project) -> tuple[int, dict[str, Any]]:
    done = project.run("status", "--json")
    assert done.returncode in (0, 3, 4), done.stderr
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)["clusters"]}


def test_purged_cluster_is_recreated_and_its_connection_repointed(project: Project) -> None:
    project.config["clusters"][1]["is_pinned"] = False  # the opt-out
    project.write_config()
    applied(project)
    store = project.store()
    ids = _ids(project)
    pinned = {c["cluster_id"] for c in store.list_clusters_page(WORKSPACE_KEY, None, 1000, pinned_only=True)[0]}
    assert ids["aep-ingest"] in pinned and ids["aep-explore"] not in pinned  # pinned by default

    connected = project.run("connect", "--cluster", "aep-explore", "--json")
    assert connected.returncode == 0, connected.stderr
    connection_id = json.loads(connected.stdout)["connectionId"]

    old = ids["aep-explore"]
    _terminate(project, old)
    store.age_cluster(WORKSPACE_KEY, old, 21)
    code, clusters = _status(project)
    assert code == 3, clusters
    (warning,) = clusters["aep-explore"]["warnings"]
    assert "unpinned and terminated 21 days ago" in warning and clusters["aep-explore"]["drift"] is False

    store.age_cluster(WORKSPACE_KEY, old, 10)  # 31 days: Databricks deletes it for good
    code, clusters = _status(project)
    assert code == 4 and clusters["aep-explore"]["state"] == "DELETED"  # purged: gone, not an error

    apply_run = project.run("apply", "--auto-approve")
    assert apply_run.returncode == 0, apply_run.stderr
    new = _ids(project)["aep-explore"]
    assert new != old
    assert f"AEP base connection {connection_id} now points at aep-explore ({old} → {new})" in apply_run.stderr
    (connection,) = store.connections()
    assert connection["id"] == connection_id and connection["auth"]["params"]["clusterId"] == new

    again = project.run("connect", "--cluster", "aep-explore", "--json")
    doc = json.loads(again.stdout)
    assert doc["connectionId"] == connection_id and not doc["created"] and not doc["repointed"]
    assert len(store.connections()) == 1
    assert _status(project)[0] == 0
    assert project.run("plan").returncode == 0


def test_connect_repoints_an_orphaned_connection_instead_of_duplicating(project: Project) -> None:
    applied(project)
    store = project.store()
    # A connection `connect` made for aep-explore when it had another id (since replaced).
    orphan = store.add_connection(
        ORG,
        "prod",
        {
            "name": "Databricks default aep-explore",
            "auth": {
                "specName": "Access Token Authentication",
                "params": {"domain": BASE_CONFIG["databricks"]["host"], "clusterId": "0101-000000-gone0000"},
            },
            "connectionSpec": {"id": "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b", "version": "1.0"},
        },
    )
    done = project.run("connect", "--cluster", "aep-explore", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["connectionId"] == orphan["id"] and doc["repointed"] and not doc["created"]
    (connection,) = store.connections()
    assert connection["auth"]["params"]["clusterId"] == _ids(project)["aep-explore"]
    assert connection["etag"] != orphan["etag"]


def test_pin_limit_is_checked_before_terraform(project: Project) -> None:
    store = project.store()
    for i in range(99):
        store.pin_cluster(
            WORKSPACE_KEY, store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"team-{i}"}, state="TERMINATED")
        )
    done = project.run("plan")
    assert done.returncode == 1
    (line,) = _errors(done.stderr)
    assert "99 pinned clusters and pinning 2 more" in line and "limit of 100" in line
    assert not (project.root() / ".terraform").exists()  # terraform never ran

    project.config["clusters"][1]["is_pinned"] = False
    project.write_config()
    applied(project)
    assert len(store.list_clusters_page(WORKSPACE_KEY, None, 1000, pinned_only=True)[0]) == 100


def test_a_leftover_import_id_never_breaks_a_plan(project: Project) -> None:
    applied(project)
    store = project.store()
    cid = store.add_cluster(WORKSPACE_KEY, {"cluster_name": "Team Analytics"})
    assert project.run("adopt", "--cluster-id", cid).returncode == 0
    assert yaml.safe_load(project.config_path.read_text())["clusters"][-1]["is_pinned"] is False  # as found
    applied(project)
    assert project.run("plan").returncode == 0  # import_id left in place: the import is a no-op

    _terminate(project, cid)
    store.age_cluster(WORKSPACE_KEY, cid, 31)
    plan = project.run("plan")
    assert plan.returncode == 2, plan.stderr
    assert f"clusters.team-analytics.import_id: cluster {cid} no longer exists" in plan.stderr
    apply_run = project.run("apply", "--auto-approve")
    assert apply_run.returncode == 0, apply_run.stderr
    assert _ids(project)["team-analytics"] != cid
