"""Issue 11 item 4: the real provider's and workspace's behaviours, copied and handled.

End to end on the sandbox with the real terraform: diff-suppressed Spark conf keys, a
cluster purged outside Terraform (`clusters/get` INVALID_STATE), `is_pinned` read from the
paginated `clusters/list`, pin-before-wait on create and unpin on delete, a Flow Service
create whose answer was lost, workspace 429 / transient 5xx.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.output import no_secrets
from tests.helpers.project import applied, cluster_ids, make_project, token

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

DELTA_PREVIEW = "spark.databricks.delta.preview.enabled"
SPEC_KEYS = ("cluster_name", "spark_version", "node_type_id", "autoscale", "autotermination_minutes", "custom_tags")


def wait_running(store: Any, cid: str) -> None:
    deadline = time.monotonic() + 30
    while store.get_cluster(WORKSPACE_KEY, cid)["state"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)


def test_diff_suppressed_spark_conf_key_is_neither_a_plan_diff_nor_drift(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    cid = cluster_ids(project)["aep-ingest"]
    store = project.store()
    # A legacy workspace rewrites the key on the cluster (the config says "true").
    live = store.get_cluster(WORKSPACE_KEY, cid)
    spec = {k: v for k, v in live.items() if k in SPEC_KEYS}
    spec["spark_conf"] = {**live["spark_conf"], DELTA_PREVIEW: "false"}
    store.edit_cluster(WORKSPACE_KEY, {**spec, "cluster_id": cid})
    wait_running(store, cid)

    plan = project.run("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    status = project.run("status")
    assert status.returncode == 0, status.stdout
    assert DELTA_PREVIEW not in status.stdout


def test_cluster_purged_outside_terraform_is_reported_as_deleted(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    ids = cluster_ids(project)
    project.store().delete_cluster(WORKSPACE_KEY, ids["aep-explore"])
    project.store().purge_cluster(WORKSPACE_KEY, ids["aep-explore"])  # clusters/get now answers INVALID_STATE

    done = project.run("status", "--json")

    assert done.returncode == 4, done.stderr
    explore = {c["name"]: c for c in json.loads(done.stdout)["clusters"]}["aep-explore"]
    assert explore["state"] == "DELETED"
    assert explore["problems"] == ["deleted outside Terraform — run `provision apply` to recreate it"]
    again = project.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert cluster_ids(project)["aep-explore"] != ids["aep-explore"]
    assert project.run("status").returncode == 0


def test_is_pinned_comes_from_the_paginated_cluster_list(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.config["clusters"][0]["is_pinned"] = False  # managed clusters are pinned unless opted out
    project.write_config()
    store = project.store()
    store.ensure_workspace(WORKSPACE_KEY)
    for i in range(3):  # pinned clusters on the first pages (ids sort before ours)
        store.pin_cluster(
            WORKSPACE_KEY,
            store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"other-{i}"}, cluster_id=f"0000-00000{i}-pinned"),
        )
    applied(project)
    ids = cluster_ids(project)
    assert project.run("plan").returncode == 0

    store.pin_cluster(WORKSPACE_KEY, ids["aep-ingest"])  # pinned outside Terraform: the config says unpinned
    plan = project.run("plan")

    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "is_pinned" in plan.stdout and "true -> false" in plan.stdout


def test_create_pins_before_waiting_and_destroy_unpins(tmp_path: Path) -> None:
    """resourceClusterCreate (clusters/resource_cluster.go): create, pin, then wait for RUNNING.

    The barrier: every `clusters/get` answer waits for a file, so a provider that waited before
    pinning could never pin. The cluster's start time is wall time, so "the state when pinned"
    would race a loaded machine; the held answers do not.
    """
    config_overlay = copy.deepcopy(make_project(tmp_path / "probe").config["clusters"])
    config_overlay[0]["is_pinned"] = True
    # inline: no secret scope, which a destroy keeps on purpose (prevent_destroy).
    project = make_project(tmp_path / "p", "inline", clusters=config_overlay)
    store = project.store()
    store.ensure_workspace(WORKSPACE_KEY)
    release = project.dir / "release-clusters-get"
    store.set_faults(**{"workspace.hold_answer": {"clusters/get": str(release)}})
    argv = [sys.executable, "-m", "provisioner.main", "apply", "--auto-approve", "--config", str(project.config_path)]
    with (project.dir / "apply.out").open("w") as out:
        run = subprocess.Popen(
            [*argv, "--sandbox"], cwd=project.dir, env=project.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:

        def pinned_ingest() -> str | None:
            for cluster in store.list_clusters(WORKSPACE_KEY):
                if cluster["cluster_name"].endswith("aep-ingest") and store.is_pinned(
                    WORKSPACE_KEY, cluster["cluster_id"]
                ):
                    return str(cluster["cluster_id"])
            return None

        deadline = time.monotonic() + 180  # a hang guard: the barrier, not the time, decides
        while (cid := pinned_ingest()) is None:
            assert run.poll() is None, (project.dir / "apply.out").read_text()
            assert time.monotonic() < deadline, "the cluster was not pinned while every clusters/get answer waited"
            time.sleep(0.05)
    finally:
        store.set_faults(**{"workspace.hold_answer": {}})
        release.touch()
        run.wait(timeout=240)
    assert run.returncode == 0, (project.dir / "apply.out").read_text()
    assert cluster_ids(project)["aep-ingest"] == cid
    assert project.run("plan").returncode == 0

    done = project.run("destroy", "--auto-approve")

    assert done.returncode == 0, done.stderr
    assert store.get_cluster(WORKSPACE_KEY, cid) is None


def test_a_lost_connection_create_answer_yields_exactly_one_connection(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    project.store().set_faults(**{"aep.connection_answer_lost": 1})

    done = project.run("connect", "--cluster", "aep-ingest", "--json")

    assert done.returncode == 0, done.stderr
    (stored,) = project.store().connections()
    assert json.loads(done.stdout)["connectionId"] == stored["id"]


def test_workspace_rate_limits_and_transient_errors_are_retried(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    store = project.store()
    store.set_faults(**{"workspace.status_429": 2, "workspace.retry_after": 1, "workspace.status_5xx": 2})

    ok = project.run("status")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    faults = store.faults()
    assert faults["workspace.status_429"] == 0 and faults["workspace.status_5xx"] == 0

    no_secrets(ok, token(project))
