"""`provision adopt`: an existing all-purpose cluster comes under management in place."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.config import BASE_CONFIG, WORKSPACE_KEY
from tests.helpers.project import Project, applied

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

EXISTING = {
    "cluster_name": "Team Analytics",
    "spark_conf": {"spark.sql.shuffle.partitions": "8"},
    "custom_tags": {"owner": "ana"},
}


def _one_error(done: object) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]  # type: ignore[attr-defined]
    assert len(lines) == 1, done.stderr  # type: ignore[attr-defined]
    return str(lines[0])


def test_adopt_then_plan_imports_without_destroying(project: Project) -> None:
    # A comment and layout the user wrote must survive the edit.
    project.config_path.write_text("# my settings\n" + project.config_path.read_text())
    applied(project)
    store = project.store()
    cid = store.add_cluster(WORKSPACE_KEY, EXISTING)

    done = project.run("adopt", "--cluster-id", cid)

    assert done.returncode == 0, done.stderr
    text = project.config_path.read_text()
    assert text.startswith("# my settings\n")
    adopted = yaml.safe_load(text)["clusters"][-1]
    assert adopted["name"] == "team-analytics" and adopted["import_id"] == cid
    assert adopted["spark_conf"] == EXISTING["spark_conf"] and adopted["custom_tags"] == EXISTING["custom_tags"]
    assert f'id = "{cid}"' in (project.root() / "imports.tf").read_text()

    plan = project.run("plan", "--summary", str(project.dir / "plan.json"))
    assert plan.returncode == 2, plan.stderr
    assert "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy." in plan.stdout
    doc = json.loads((project.dir / "plan.json").read_text())
    (res,) = [r for r in doc["resources"] if r["address"] == "databricks_cluster.team-analytics"]
    assert res["action"] == "import+update" and res["importId"] == cid
    assert len(res["changedAttributes"]) == 1 and res["changedAttributes"][0].startswith("spark_conf[fs.azure.sas.")
    assert res["restartsRunningCluster"] is True

    apply_run = project.run("apply", "--auto-approve")
    assert apply_run.returncode == 0, apply_run.stderr
    assert store.get_cluster(WORKSPACE_KEY, cid) is not None  # the same cluster, not a new one
    assert store.dlz_access(WORKSPACE_KEY, cid)
    assert project.run("plan").returncode == 0  # converged: nothing left to do


def test_job_cluster_and_unknown_id_are_refused(project: Project) -> None:
    store = project.store()
    store.ensure_workspace(WORKSPACE_KEY)
    job = store.add_cluster(WORKSPACE_KEY, {"cluster_name": "nightly"}, cluster_source="JOB")
    before = project.config_path.read_bytes()

    refused = project.run("adopt", "--cluster-id", job)
    assert refused.returncode == 1
    assert "job cluster" in _one_error(refused)

    unknown = project.run("adopt", "--cluster-id", "0000-000000-nosuchid")
    assert unknown.returncode == 1
    assert "no such cluster" in _one_error(unknown)
    assert project.config_path.read_bytes() == before
    assert not project.root().exists()


def test_name_clash_and_shared_cluster_list_are_refused(project: Project) -> None:
    store = project.store()
    cid = store.add_cluster(WORKSPACE_KEY, {"cluster_name": "aep-ingest"})
    before = project.config_path.read_bytes()
    clash = project.run("adopt", "--cluster-id", cid)
    assert clash.returncode == 1 and "--name" in _one_error(clash)
    assert project.config_path.read_bytes() == before

    # With environments, the shared top-level list belongs to every workspace: refuse to guess.
    project.config["environments"] = {"dev": {}, "prod": {"aep": {"sandbox": "prod"}}}
    project.write_config()
    shared = project.run("adopt", "--cluster-id", cid, "--name", "other", "--env", "dev")
    assert shared.returncode == 1 and "environments.dev" in _one_error(shared)

    project.config["environments"]["dev"] = {"clusters": [BASE_CONFIG["clusters"][1]]}
    project.write_config()
    ok = project.run("adopt", "--cluster-id", cid, "--name", "other", "--env", "dev")
    assert ok.returncode == 0, ok.stderr
    doc = yaml.safe_load(project.config_path.read_text())
    assert [c["name"] for c in doc["environments"]["dev"]["clusters"]] == ["aep-explore", "other"]
    assert [c["name"] for c in doc["clusters"]] == ["aep-ingest", "aep-explore"]


MODERN_UI_CLUSTER = {
    # What today's Compute UI creates: the `kind` form, dedicated access, single node, ML runtime.
    "cluster_name": "Ana's ML box",
    "spark_version": "16.4.x-cpu-ml-scala2.12",
    "node_type_id": "Standard_D4ds_v5",
    "kind": "CLASSIC_PREVIEW",
    "is_single_node": True,
    "use_ml_runtime": True,
    "data_security_mode": "DATA_SECURITY_MODE_DEDICATED",
    "single_user_name": "ana@example.com",
    "num_workers": 0,
    "runtime_engine": "PHOTON",
    "autotermination_minutes": 120,
}


def test_adopt_a_cluster_from_todays_ui_plans_only_import_and_sas_entry(project: Project) -> None:
    applied(project)
    store = project.store()
    cid = store.add_cluster(WORKSPACE_KEY, MODERN_UI_CLUSTER)

    done = project.run("adopt", "--cluster-id", cid)
    assert done.returncode == 0, done.stderr
    # Said before it is written: Ana's dedicated cluster runs nothing of this run's (issue 22, item 4).
    (said,) = [line for line in done.stderr.splitlines() if f"--cluster-id {cid}: dedicated" in line]
    assert "ana@example.com" in said and "the DLZ probe cannot run" in said
    adopted = yaml.safe_load(project.config_path.read_text())["clusters"][-1]
    for key in ("kind", "is_single_node", "use_ml_runtime", "data_security_mode", "single_user_name"):
        assert adopted[key] == MODERN_UI_CLUSTER[key], key
    clusters_tf = (project.root() / "clusters.tf").read_text()
    assert 'single_user_name        = "ana@example.com"' in clusters_tf
    assert 'kind                    = "CLASSIC_PREVIEW"' in clusters_tf

    plan = project.run("plan", "--summary", str(project.dir / "plan.json"))
    assert plan.returncode == 2, plan.stderr
    assert "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy." in plan.stdout
    doc = json.loads((project.dir / "plan.json").read_text())
    (res,) = [r for r in doc["resources"] if r["address"] == "databricks_cluster.ana-s-ml-box"]
    assert res["action"] == "import+update" and res["importId"] == cid
    assert [a.split("[")[0] for a in res["changedAttributes"]] == ["spark_conf"], res["changedAttributes"]

    # Ana's dedicated cluster runs no command of the run's principal, so no probe (issue 22, item 4).
    apply_run = project.run("apply", "--auto-approve", "--no-verify")
    assert apply_run.returncode == 0, apply_run.stderr
    assert store.dlz_access(WORKSPACE_KEY, cid)
    assert project.run("plan").returncode == 0  # no `single_user_name -> null`, nothing left


def test_dedicated_cluster_created_by_the_tool_has_no_perpetual_diff(project: Project) -> None:
    project.config["clusters"] = [
        {
            "name": "dedicated",
            "spark_version": "16.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "kind": "CLASSIC_PREVIEW",
            "is_single_node": True,
            "data_security_mode": "DATA_SECURITY_MODE_DEDICATED",
            "single_user_name": "ana@example.com",
        }
    ]
    project.write_config()
    # Ana's dedicated cluster runs no command of the run's principal, so no probe (issue 22, item 4).
    apply_run = project.run("apply", "--auto-approve", "--no-verify")
    assert apply_run.returncode == 0, apply_run.stderr
    assert project.run("plan").returncode == 0

    # Without single_user_name the workspace would assign the creator and every plan would
    # show `single_user_name -> null` (databricks/cli#4418): refused before anything runs.
    del project.config["clusters"][0]["single_user_name"]
    project.write_config()
    refused = project.run("plan")
    assert refused.returncode == 1 and "single_user_name" in _one_error(refused)


def test_destroy_keeps_an_adopted_cluster_unless_asked(project: Project) -> None:
    """`destroy` deletes what the tool created and forgets, not deletes, what it adopted; it says
    which it kept. `--include-adopted` deletes the adopted one too."""
    store = project.store()
    applied(project)
    created = {c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY)}
    cid = store.add_cluster(WORKSPACE_KEY, EXISTING)
    assert project.run("adopt", "--cluster-id", cid).returncode == 0
    applied(project)

    done = project.run("destroy", "--auto-approve")

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert {c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY)} == {cid}, "only the adopted cluster is left"
    assert created.isdisjoint(c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY))
    kept = [line for line in done.stderr.splitlines() if "kept clusters.team-analytics" in line]
    assert kept and cid in kept[0], done.stderr
    state = json.loads((project.root() / "terraform.tfstate").read_text())
    assert not [r for r in state["resources"] if r["type"] == "databricks_cluster"], "forgotten: not in state"

    # Adopted again by the next apply (its entry still says import_id), then deleted on request.
    applied(project)
    everything = project.run("destroy", "--auto-approve", "--include-adopted")
    assert everything.returncode == 0, everything.stderr
    assert store.list_clusters(WORKSPACE_KEY) == []


def test_adopt_writes_nothing_for_a_cluster_that_ignores_the_spark_config_sas(project: Project) -> None:
    """Standard access reads storage only through Unity Catalog, and AUTO is mostly standard (issue
    22, item 4): refused before provision.yaml, the root or AEP is touched."""
    store = project.store()
    before = project.config_path.read_bytes()
    auto = store.add_cluster(
        WORKSPACE_KEY, {**EXISTING, "kind": "CLASSIC_PREVIEW", "data_security_mode": "DATA_SECURITY_MODE_AUTO"}
    )
    shared = store.add_cluster(WORKSPACE_KEY, {**EXISTING, "data_security_mode": "USER_ISOLATION"})
    for cid, fact in ((auto, "DATA_SECURITY_MODE_AUTO lets Databricks choose"), (shared, "USER_ISOLATION: standard")):
        trace = project.dir / f"{cid}.jsonl"
        done = project.run("adopt", "--cluster-id", cid, env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))
        assert done.returncode == 1, done.stderr
        line = _one_error(done)
        assert f"--cluster-id {cid}: {fact}" in line and "nothing was adopted" in line, line
        assert not any(json.loads(x)["path"].endswith("/credentials") for x in trace.read_text().splitlines())
    assert project.config_path.read_bytes() == before
    assert not (project.root() / "imports.tf").exists()
