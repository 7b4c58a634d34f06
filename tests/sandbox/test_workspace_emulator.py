"""The Databricks workspace emulator over a real socket: clusters, secrets, knobs, oracle."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import EMULATOR_ORG_ID, Workspace

SPEC: dict[str, Any] = {
    "cluster_name": "dlz-reader",
    "spark_version": "15.4.x-scala2.12",
    "node_type_id": "Standard_DS3_v2",
    "num_workers": 1,
    "autotermination_minutes": 60,
    "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
    "spark_env_vars": {"PYSPARK_PYTHON": "/databricks/python3/bin/python3"},
    "custom_tags": {"team": "data"},
}


def _dlz_conf_key(body: dict[str, str]) -> str:
    return f"fs.azure.sas.{body['containerName']}.{body['storageAccountName']}.blob.core.windows.net"


def _create(ws: Workspace, **overrides: Any) -> str:
    return str(ws.ok("clusters/create", {**SPEC, **overrides})["cluster_id"])


# ---- auth and routing ---------------------------------------------------------------------------


def test_pat_is_required(sandbox: Sandbox, ws: Workspace, http: requests.Session) -> None:
    url = f"{ws.base}/api/2.1/clusters/list"
    assert http.get(url, timeout=5).status_code == 401
    bad = http.get(url, headers={"Authorization": "Bearer dapi-wrong"}, timeout=5)
    # A real workspace: 403, a numeric error_code (databricks-sdk-go issues #873, #917, #1046).
    assert bad.status_code == 403
    assert bad.json() == {"error_code": 403, "message": "Invalid access token."}
    assert bad.headers["X-Databricks-Reason-Phrase"] == "Invalid access token."
    assert ws.get("clusters/list").status_code == 200


def test_unknown_workspace_and_endpoint(sandbox: Sandbox, ws: Workspace, http: requests.Session) -> None:
    other = http.get(
        f"{sandbox.base_url}/ws/adb-999.9.azuredatabricks.net/api/2.1/clusters/list",
        headers=ws.headers,
        timeout=5,
    )
    assert other.status_code == 404
    missing = ws.get("clusters/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    malformed = ws.http.post(f"{ws.base}/api/2.1/clusters/create", data="{not json", headers=ws.headers, timeout=5)
    assert malformed.status_code == 400
    assert malformed.json()["error_code"] == "MALFORMED_REQUEST"


def test_hosts_mapping_points_at_the_server(sandbox: Sandbox) -> None:
    assert sandbox.hosts()[WORKSPACE_HOST] == f"{sandbox.base_url}/ws/{WORKSPACE_KEY}"


# ---- clusters ------------------------------------------------------------------------------------


def test_create_goes_pending_then_running_and_round_trips(ws: Workspace) -> None:
    cluster_id = _create(ws)
    first = ws.cluster(cluster_id)
    assert first["state"] == "PENDING"
    running = ws.wait_state(cluster_id, "RUNNING")
    for field, value in SPEC.items():
        assert running[field] == value, field
    assert running["cluster_source"] == "API"
    assert running["driver_node_type_id"] == "Standard_DS3_v2"
    assert running["default_tags"] == {
        "Vendor": "Databricks",
        "Creator": running["creator_user_name"],
        "ClusterName": "dlz-reader",
        "ClusterId": cluster_id,
    }
    assert running["start_time"] <= running["last_restarted_time"] <= time.time() * 1000
    listed = ws.get("clusters/list").json()["clusters"]
    assert [c["cluster_id"] for c in listed] == [cluster_id]


def test_create_validation(ws: Workspace) -> None:
    no_version = ws.post("clusters/create", {"cluster_name": "x", "num_workers": 1})
    assert no_version.status_code == 400
    assert no_version.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    both = ws.post("clusters/create", {**SPEC, "autoscale": {"min_workers": 1, "max_workers": 2}})
    assert both.status_code == 400
    assert ws.get("clusters/list").json() == {}


def test_edit_of_running_cluster_restarts_with_new_effective_conf(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = _create(ws)
    before = ws.wait_state(cluster_id, "RUNNING")
    time.sleep(0.01)
    new_conf = {"spark.sql.shuffle.partitions": "8"}
    ws.ok("clusters/edit", {**SPEC, "cluster_id": cluster_id, "spark_conf": new_conf})
    restarting = ws.cluster(cluster_id)
    assert restarting["state"] == "RESTARTING"
    assert restarting["spark_conf"] == new_conf
    after = ws.wait_state(cluster_id, "RUNNING")
    assert after["last_restarted_time"] > before["last_restarted_time"]
    assert sandbox.store.effective_spark_conf(WORKSPACE_KEY, cluster_id) == new_conf


def test_edit_of_terminated_cluster_keeps_it_terminated(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = _create(ws)
    ws.wait_state(cluster_id, "RUNNING")
    ws.ok("clusters/delete", {"cluster_id": cluster_id})
    assert ws.cluster(cluster_id)["state"] == "TERMINATING"
    ws.wait_state(cluster_id, "TERMINATED")
    ws.ok("clusters/edit", {**SPEC, "cluster_id": cluster_id, "num_workers": 3})
    time.sleep(0.4)
    edited = ws.cluster(cluster_id)
    assert edited["state"] == "TERMINATED"
    assert edited["num_workers"] == 3
    ws.ok("clusters/start", {"cluster_id": cluster_id})
    assert ws.cluster(cluster_id)["state"] == "PENDING"
    assert ws.wait_state(cluster_id, "RUNNING")["num_workers"] == 3


def test_edit_while_pending_is_invalid_state(ws: Workspace) -> None:
    cluster_id = _create(ws)
    resp = ws.post("clusters/edit", {**SPEC, "cluster_id": cluster_id})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_STATE"


def test_resize_does_not_restart(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = _create(ws)
    before = ws.wait_state(cluster_id, "RUNNING")
    ws.ok("clusters/resize", {"cluster_id": cluster_id, "autoscale": {"min_workers": 1, "max_workers": 4}})
    assert ws.cluster(cluster_id)["state"] == "RESIZING"
    after = ws.wait_state(cluster_id, "RUNNING")
    assert after["autoscale"] == {"min_workers": 1, "max_workers": 4}
    assert "num_workers" not in after
    assert after["last_restarted_time"] == before["last_restarted_time"]
    assert after["spark_conf"] == SPEC["spark_conf"]


def test_resize_of_terminated_cluster_is_invalid_state(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = sandbox.store.add_cluster(WORKSPACE_KEY, state="TERMINATED")
    resp = ws.post("clusters/resize", {"cluster_id": cluster_id, "num_workers": 2})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_STATE"


def test_restart_and_start_state_rules(ws: Workspace) -> None:
    cluster_id = _create(ws)
    ws.wait_state(cluster_id, "RUNNING")
    started = ws.post("clusters/start", {"cluster_id": cluster_id})
    assert started.status_code == 400
    assert started.json()["error_code"] == "INVALID_STATE"
    ws.ok("clusters/restart", {"cluster_id": cluster_id})
    assert ws.cluster(cluster_id)["state"] == "RESTARTING"
    ws.wait_state(cluster_id, "RUNNING")


def test_permanent_delete_makes_the_cluster_unknown(ws: Workspace) -> None:
    cluster_id = _create(ws)
    ws.ok("clusters/permanent-delete", {"cluster_id": cluster_id})
    resp = ws.get("clusters/get", cluster_id=cluster_id)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "does not exist" in resp.json()["message"]
    again = ws.post("clusters/delete", {"cluster_id": cluster_id})
    assert again.status_code == 400


def _pinned_ids(ws: Workspace) -> list[str]:
    resp = ws.get("clusters/list", **{"filter_by.is_pinned": "true"})
    assert resp.status_code == 200, resp.text
    return [c["cluster_id"] for c in resp.json().get("clusters", [])]


def test_pin_and_unpin(ws: Workspace) -> None:
    """`is_pinned` is not a clusters/get field; the pinned filter of clusters/list says it."""
    cluster_id = _create(ws)
    ws.ok("clusters/pin", {"cluster_id": cluster_id})
    assert "is_pinned" not in ws.cluster(cluster_id)
    assert _pinned_ids(ws) == [cluster_id]
    refused = ws.post("clusters/permanent-delete", {"cluster_id": cluster_id})
    assert refused.status_code == 400 and "unpin the cluster first" in refused.json()["message"]
    ws.ok("clusters/unpin", {"cluster_id": cluster_id})
    assert _pinned_ids(ws) == []
    ws.ok("clusters/permanent-delete", {"cluster_id": cluster_id})


def test_cluster_list_is_paginated(sandbox: Sandbox, ws: Workspace) -> None:
    made = sorted(sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(5))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"page_token": token} if token else {}
        body = ws.get("clusters/list", **params).json()
        pages += 1
        seen += [c["cluster_id"] for c in body.get("clusters", [])]
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == 3 and seen == made
    # An explicit page_size is honoured up to 100 (the provider asks for 100 pinned clusters).
    whole = ws.get("clusters/list", page_size="100").json()
    assert [c["cluster_id"] for c in whole["clusters"]] == made and "next_page_token" not in whole
    assert len(ws.get("clusters/list", page_size="1000").json()["clusters"]) == 5


def test_rate_limit_and_transient_errors_knobs(sandbox: Sandbox, ws: Workspace) -> None:
    sandbox.store.set_faults(**{"workspace.status_429": 1, "workspace.retry_after": 7, "workspace.status_5xx": 1})
    limited = ws.get("clusters/list")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    unavailable = ws.get("clusters/list")
    assert unavailable.status_code == 503 and unavailable.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert ws.get("clusters/list").status_code == 200


def test_purged_cluster_answers_invalid_state(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = sandbox.store.add_cluster(WORKSPACE_KEY, state="TERMINATED")
    sandbox.store.purge_cluster(WORKSPACE_KEY, cluster_id)
    resp = ws.get("clusters/get", cluster_id=cluster_id)
    assert resp.status_code == 400 and resp.json()["error_code"] == "INVALID_STATE"


def test_job_cluster_from_store_is_visible_and_not_editable(sandbox: Sandbox, ws: Workspace) -> None:
    cluster_id = sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": "job-123"}, cluster_source="JOB")
    got = ws.cluster(cluster_id)
    assert got["cluster_source"] == "JOB"
    assert got["state"] == "RUNNING"
    resp = ws.post("clusters/edit", {**SPEC, "cluster_id": cluster_id})
    assert resp.status_code == 400


POLICY = {
    "spark_conf.spark.databricks.cluster.profile": {"type": "fixed", "value": "serverless", "hidden": True},
    "custom_tags.CostCenter": {"type": "fixed", "value": "4711"},
    "autotermination_minutes": {"type": "range", "minValue": 10, "maxValue": 120, "defaultValue": 30},
    "runtime_engine": {"type": "allowlist", "values": ["STANDARD", "PHOTON"], "isOptional": True},
    "instance_pool_id": {"type": "forbidden", "hidden": True},
    "cluster_name": {"type": "regex", "pattern": "dlz-.*", "isOptional": True},
    "node_type_id": {"type": "blocklist", "values": ["Standard_NC6"], "isOptional": True},
    "spark_version": {"type": "unlimited", "defaultValue": "15.4.x-scala2.12"},
    "cluster_type": {"type": "allowlist", "values": ["all-purpose"]},
}


def _policy_spec(policy_id: str, **extra: Any) -> dict[str, Any]:
    return {**SPEC, "cluster_name": "dlz-ingest", "policy_id": policy_id, "autotermination_minutes": 60, **extra}


def test_policies_get_and_list(sandbox: Sandbox, ws: Workspace) -> None:
    assert ws.get("policies/clusters/list", version="2.0").json() == {"total_count": 0}
    policy_id = sandbox.store.create_policy(WORKSPACE_KEY, "AEP ingest", POLICY)
    got = ws.get("policies/clusters/get", version="2.0", policy_id=policy_id).json()
    assert got["name"] == "AEP ingest" and json.loads(got["definition"]) == POLICY
    listed = ws.get("policies/clusters/list", version="2.0").json()
    assert listed["total_count"] == 1 and listed["policies"][0]["policy_id"] == policy_id
    missing = ws.get("policies/clusters/get", version="2.0", policy_id="NOPE")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_fixed_policy_values_are_written_into_the_cluster_on_create_and_edit(sandbox: Sandbox, ws: Workspace) -> None:
    policy_id = sandbox.store.create_policy(WORKSPACE_KEY, "AEP ingest", POLICY)
    cluster_id = ws.ok("clusters/create", _policy_spec(policy_id))["cluster_id"]
    got = ws.cluster(cluster_id)
    assert got["spark_conf"] == {**SPEC["spark_conf"], "spark.databricks.cluster.profile": "serverless"}
    assert got["custom_tags"]["CostCenter"] == "4711"
    assert got["autotermination_minutes"] == 60  # a default never overrides a value that was sent
    assert "apply_policy_default_values" not in got
    ws.wait_state(cluster_id, "RUNNING")
    ws.ok("clusters/edit", {**_policy_spec(policy_id), "cluster_id": cluster_id, "spark_conf": {"a": "b"}})
    assert ws.cluster(cluster_id)["spark_conf"] == {"a": "b", "spark.databricks.cluster.profile": "serverless"}


def test_default_values_apply_only_when_asked(sandbox: Sandbox, ws: Workspace) -> None:
    policy_id = sandbox.store.create_policy(WORKSPACE_KEY, "defaults", POLICY)
    body = {k: v for k, v in _policy_spec(policy_id).items() if k not in ("autotermination_minutes", "spark_version")}
    refused = ws.post("clusters/create", body)
    assert refused.status_code == 400 and "autotermination_minutes, the value must be present" in refused.text
    created = ws.ok("clusters/create", {**body, "apply_policy_default_values": True})["cluster_id"]
    got = ws.cluster(created)
    assert got["autotermination_minutes"] == 30 and got["spark_version"] == "15.4.x-scala2.12"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"custom_tags": {"CostCenter": "0815"}}, 'custom_tags, CostCenter must be 4711 (is "0815")'),
        ({"autotermination_minutes": 600}, "autotermination_minutes must be at most 120 (is 600)"),
        ({"autotermination_minutes": 0}, "autotermination_minutes must be at least 10 (is 0)"),
        ({"runtime_engine": "TURBO"}, "runtime_engine must be one of"),
        ({"node_type_id": "Standard_NC6"}, "node_type_id must not be one of"),
        ({"cluster_name": "ingest"}, 'cluster_name must match dlz-.* (is "ingest")'),
        ({"instance_pool_id": "pool-1"}, "instance_pool_id must not be present"),
    ],
)
def test_create_and_edit_against_the_policy_are_refused(
    sandbox: Sandbox, ws: Workspace, change: dict[str, Any], message: str
) -> None:
    policy_id = sandbox.store.create_policy(WORKSPACE_KEY, "strict", POLICY)
    refused = ws.post("clusters/create", _policy_spec(policy_id, **change))
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("Cluster validation error: Validation failed for ") and message in body["message"]
    cluster_id = ws.ok("clusters/create", _policy_spec(policy_id))["cluster_id"]
    ws.wait_state(cluster_id, "RUNNING")
    edit = ws.post("clusters/edit", {**_policy_spec(policy_id, **change), "cluster_id": cluster_id})
    assert edit.status_code == 400 and message in edit.json()["message"]


def test_workspace_fail_knob(sandbox: Sandbox, ws: Workspace) -> None:
    sandbox.store.set_faults(workspace_fail={"clusters/create": 2})
    assert ws.post("clusters/create", SPEC).status_code == 500
    assert ws.post("clusters/create", SPEC).status_code == 500
    assert ws.post("clusters/create", SPEC).status_code == 200
    assert ws.get("clusters/list").status_code == 200
    assert sandbox.store.faults()["workspace.fail"] == {"clusters/create": 0}


# ---- secrets ----------------------------------------------------------------------------------------


def test_secrets_never_come_back(sandbox: Sandbox, ws: Workspace) -> None:
    assert ws.get("secrets/scopes/list", "2.0").json() == {}
    ws.ok("secrets/scopes/create", {"scope": "dlz", "initial_manage_principal": "users"})
    dup = ws.post("secrets/scopes/create", {"scope": "dlz"}, "2.0")
    assert dup.status_code == 400
    assert dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert ws.get("secrets/scopes/list", "2.0").json() == {"scopes": [{"name": "dlz", "backend_type": "DATABRICKS"}]}

    # The store records whole milliseconds (truncated): a float `before` within the same
    # millisecond as the put would be above it.
    before = int(time.time() * 1000)
    ws.ok("secrets/put", {"scope": "dlz", "key": "sas", "string_value": "super-secret-value"})
    listed = ws.get("secrets/list", "2.0", scope="dlz")
    assert listed.status_code == 200
    assert "super-secret-value" not in listed.text
    [entry] = listed.json()["secrets"]
    assert entry["key"] == "sas"
    assert before <= entry["last_updated_timestamp"] <= time.time() * 1000

    missing_scope = ws.post("secrets/put", {"scope": "nope", "key": "k", "string_value": "v"}, "2.0")
    assert missing_scope.status_code == 404
    assert missing_scope.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    ws.ok("secrets/delete", {"scope": "dlz", "key": "sas"})
    assert ws.get("secrets/list", "2.0", scope="dlz").json() == {}
    assert ws.post("secrets/delete", {"scope": "dlz", "key": "sas"}, "2.0").status_code == 404
    ws.ok("secrets/scopes/delete", {"scope": "dlz"})
    assert ws.get("secrets/list", "2.0", scope="dlz").status_code == 404


# ---- the oracle ---------------------------------------------------------------------------------------


def test_oracle_resolves_secret_references_at_start(sandbox: Sandbox, ws: Workspace) -> None:
    store = sandbox.store
    old = store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    key = _dlz_conf_key(old)
    ws.ok("secrets/scopes/create", {"scope": "dlz"})
    ws.ok("secrets/put", {"scope": "dlz", "key": "sas", "string_value": old["SASToken"]})
    cluster_id = _create(ws, spark_conf={key: "{{secrets/dlz/sas}}"})
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is False  # not running yet
    running = ws.wait_state(cluster_id, "RUNNING")
    assert running["spark_conf"] == {key: "{{secrets/dlz/sas}}"}  # the reference, never the value
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is True

    new = store.refresh_dlz(EMULATOR_ORG_ID, "prod")
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is False
    ws.ok("secrets/put", {"scope": "dlz", "key": "sas", "string_value": new["SASToken"]})
    # The running cluster still holds the value it resolved when it started.
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is False
    assert store.effective_spark_conf(WORKSPACE_KEY, cluster_id) == {key: old["SASToken"]}

    ws.ok("clusters/restart", {"cluster_id": cluster_id})
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is False  # restarting is not reachable
    ws.wait_state(cluster_id, "RUNNING")
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is True

    ws.ok("clusters/delete", {"cluster_id": cluster_id})
    assert store.dlz_access(WORKSPACE_KEY, cluster_id) is False


def test_oracle_needs_the_exact_key(sandbox: Sandbox, ws: Workspace) -> None:
    body = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    wrong_key = _dlz_conf_key({**body, "storageAccountName": "sndbxdtlnwrongaccount00"})
    cluster_id = _create(ws, spark_conf={wrong_key: body["SASToken"]})
    ws.wait_state(cluster_id, "RUNNING")
    assert sandbox.store.dlz_access(WORKSPACE_KEY, cluster_id) is False


def test_missing_secret_fails_the_start(ws: Workspace) -> None:
    cluster_id = _create(ws, spark_conf={"x": "{{secrets/none/such}}"})
    failed = ws.wait_state(cluster_id, "TERMINATED")
    assert failed["termination_reason"]["code"] == "SECRET_RESOLUTION_ERROR"


def test_secret_scope_acls(ws: Workspace) -> None:
    ws.ok("secrets/scopes/create", {"scope": "acl-scope", "initial_manage_principal": "users"})
    ws.ok("secrets/acls/put", {"scope": "acl-scope", "principal": "data-engineers", "permission": "READ"})
    listed = ws.get("secrets/acls/list", version="2.0", scope="acl-scope").json()
    assert listed == {
        "items": [{"principal": "data-engineers", "permission": "READ"}, {"principal": "users", "permission": "MANAGE"}]
    }
    got = ws.get("secrets/acls/get", version="2.0", scope="acl-scope", principal="data-engineers").json()
    assert got == {"principal": "data-engineers", "permission": "READ"}
    ws.ok("secrets/acls/delete", {"scope": "acl-scope", "principal": "data-engineers"})
    missing = ws.get("secrets/acls/get", version="2.0", scope="acl-scope", principal="data-engineers")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = ws.post("secrets/scopes/create", {"scope": "other", "initial_manage_principal": "admins"}, "2.0")
    assert bad.status_code == 400
