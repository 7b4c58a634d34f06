"""`provision status`: exit codes 0 / 3 / 4 / 1, each provoked on the sandbox, and the --json shape."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT, ORG, WORKSPACE_KEY
from tests.helpers.project import Project, applied, cluster_ids

POLICY = {"spark_conf.spark.databricks.cluster.profile": {"type": "fixed", "value": "serverless"}}

TOP_KEYS = {
    "schemaVersion",
    "connectionTokens",
    "environment",
    "status",
    "exitCode",
    "token",
    "secret",
    "clusters",
    "rotationNeeded",
    "rotationUnfinished",
    "dlz",
    "databricksIdentity",
}
TOKEN_KEYS = {
    "mode",
    "containerName",
    "storageAccountName",
    "sparkConfKey",
    "expiryDate",
    "daysLeft",
    "warnDays",
    "expiring",
}
CLUSTER_KEYS = {
    "name",
    "clusterId",
    "state",
    "sasEntry",
    "dlzAccess",
    "dlzProbe",
    "lastStarted",
    "drift",
    "problems",
    "warnings",
}


def _status(project: Project) -> tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]:
    done = project.run("status", "--json")
    assert done.returncode in (0, 3, 4), done.stderr
    doc = json.loads(done.stdout)
    for secret in (AEP_SECRET, DATABRICKS_PAT, _token(project)):
        assert secret not in done.stdout + done.stderr
    return done.returncode, doc, done


def _token(project: Project) -> str:
    return str(project.store().dlz_credentials(ORG, "prod")["SASToken"])


def _clusters(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["clusters"]}


def test_secret_scope_healthy_expiring_and_drift(project: Project) -> None:
    # Keys a cluster policy adds are not drift.
    project.config["clusters"][0]["policy_id"] = project.store().create_policy(WORKSPACE_KEY, "team", POLICY)
    project.write_config()
    applied(project)

    code, doc, _ = _status(project)
    assert code == 0 and doc["status"] == "healthy" and doc["exitCode"] == 0
    assert set(doc) == TOP_KEYS and set(doc["token"]) == TOKEN_KEYS
    assert all(set(c) == CLUSTER_KEYS for c in doc["clusters"])
    assert doc["token"]["daysLeft"] == 90 and doc["token"]["warnDays"] == 7
    assert doc["secret"]["present"] and doc["secret"]["holdsCurrentToken"] is True
    assert {c["sasEntry"] for c in doc["clusters"]} == {"current"}
    assert {c["dlzAccess"] for c in doc["clusters"]} == {True}
    human = project.run("status")
    assert human.returncode == 0 and "status: healthy (exit 0)" in human.stdout
    assert "aep-ingest" in human.stdout and "RUNNING" in human.stdout

    # 3: the token expires within the warning window.
    project.config["sas"]["warn_days"] = 90
    project.write_config()
    code, doc, _ = _status(project)
    assert code == 3 and doc["status"] == "expiring" and doc["token"]["expiring"] is True
    project.config["sas"]["warn_days"] = 7
    project.write_config()

    # 4: someone edits a cluster and drops the SAS entry (and changes a configured key).
    store = project.store()
    cid = cluster_ids(project)["aep-ingest"]
    live = store.get_cluster(WORKSPACE_KEY, cid)
    spec = {
        k: v
        for k, v in live.items()
        if k in ("cluster_name", "spark_version", "node_type_id", "autoscale", "autotermination_minutes", "custom_tags")
    }
    spec["spark_conf"] = {"spark.databricks.delta.preview.enabled": "false"}
    store.edit_cluster(WORKSPACE_KEY, {**spec, "cluster_id": cid})
    code, doc, _ = _status(project)
    ingest = _clusters(doc)["aep-ingest"]
    assert code == 4 and doc["status"] == "drift"
    assert ingest["sasEntry"] == "missing" and ingest["drift"]
    # The real provider diff-suppresses this key (SparkConfDiffSuppressFunc): never drift.
    assert not any("spark.databricks.delta.preview.enabled" in p for p in ingest["problems"])
    assert not any("cluster.profile" in p for p in ingest["problems"])  # the policy key is not drift
    assert _clusters(doc)["aep-explore"]["drift"] is False

    # Put it back, then refresh outside the tool: the secret holds a revoked token.
    applied(project)
    assert _status(project)[0] == 0
    store.refresh_dlz(ORG, "prod")
    code, doc, _ = _status(project)
    assert code == 4
    assert doc["secret"]["holdsCurrentToken"] is False and doc["secret"]["problems"]
    assert "AEP issued a new SAS token" in doc["rotationNeeded"]
    assert {c["dlzAccess"] for c in doc["clusters"]} == {False}

    # A running cluster started before the secret's value was (re)written is stale.
    applied(project)
    store.put_secret(WORKSPACE_KEY, "aep-dlz", "dlz-sas-token", _token(project))
    code, doc, _ = _status(project)
    assert code == 4
    assert {c["sasEntry"] for c in doc["clusters"]} == {"stale"}


def test_inline_refresh_outside_the_tool_is_drift(project: Project) -> None:
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    applied(project)
    assert _status(project)[0] == 0
    project.store().refresh_dlz(ORG, "prod")
    code, doc, _ = _status(project)
    assert code == 4
    assert doc["secret"] is None
    # Each cluster's spark_conf holds the token AEP revoked when it issued the new one.
    assert {c["sasEntry"] for c in doc["clusters"]} == {"revoked"}
    human = project.run("status")
    assert human.returncode == 4 and "revoked" in human.stdout


def test_missing_cluster_and_not_applied(project: Project) -> None:
    code, doc, _ = _status(project)  # never applied: nothing managed yet
    assert code == 4
    assert {c["state"] for c in doc["clusters"]} == {"NOT_CREATED"}


def test_error_is_exit_1_with_one_line(project: Project) -> None:
    project.store().set_faults(**{"aep.status_5xx": 50})
    project.config["aep"] = {**project.config["aep"], "retries": 0, "max_retry_seconds": 1}
    project.write_config()
    done = project.run("status", "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert len([line for line in done.stderr.splitlines() if line.startswith("error:")]) == 1


def test_pinned_clusters_come_from_one_list_call(project: Project) -> None:
    """A pinned cluster's details come whole with the pinned list (one page of 100, the pin
    limit); `clusters/get` is made only for a cluster the config leaves unpinned. (That the
    reads overlap AEP's answers is a timing: bench/scale.py measures it.)"""
    project.config["clusters"][1]["is_pinned"] = False
    project.write_config()
    applied(project)
    ids = cluster_ids(project)
    trace = project.dir / "trace.jsonl"

    code, doc, _ = _status_traced(project, trace)

    assert code == 0, doc
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    gets = [c for c in calls if c["path"].endswith("/clusters/get")]
    lists = [c for c in calls if c["path"].endswith("/clusters/list")]
    assert len(lists) == 1 and len(gets) == 1, [c["path"] for c in calls]
    assert {c["name"]: c["state"] for c in doc["clusters"]} == dict.fromkeys(ids, "RUNNING")
    assert {c["name"]: c["sasEntry"] for c in doc["clusters"]} == dict.fromkeys(ids, "current")


def _status_traced(project: Project, trace: Any) -> tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]:
    project.extra_env["PROVISION_SANDBOX_TRACE"] = str(trace)
    try:
        return _status(project)
    finally:
        del project.extra_env["PROVISION_SANDBOX_TRACE"]
