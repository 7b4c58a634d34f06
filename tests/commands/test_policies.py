"""Cluster policies end to end: fixed values never drift, rotate is not blocked, conflicts fail fast."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import pytest

from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.project import Project

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

POLICY = {
    "spark_conf.spark.databricks.acl.dfAclsEnabled": {"type": "fixed", "value": "true", "hidden": True},
    "custom_tags.CostCenter": {"type": "fixed", "value": "4711"},
    "runtime_engine": {"type": "fixed", "value": "PHOTON"},
    "autotermination_minutes": {"type": "range", "minValue": 10, "maxValue": 90},
    "node_type_id": {"type": "allowlist", "values": ["Standard_DS3_v2", "Standard_DS4_v2"]},
    "instance_pool_id": {"type": "forbidden", "hidden": True},
}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _with_policy(project: Project, policy: Mapping[str, object]) -> str:
    policy_id = str(project.store().create_policy(WORKSPACE_KEY, "AEP ingest", policy))
    for cluster in project.config["clusters"]:
        cluster["policy_id"] = policy_id
    project.write_config()
    return policy_id


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_policy_fixed_fields_never_drift_and_rotate_is_not_blocked(project: Project, mode: str) -> None:
    # inline: rotate's pre-flight plan must see no "pending change besides the token".
    project.config["sas"]["mode"] = mode
    _with_policy(project, POLICY)
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    store = project.store()
    clusters = store.list_clusters(WORKSPACE_KEY)
    assert len(clusters) == 2
    for info in clusters:  # the workspace applied the policy ...
        assert info["spark_conf"]["spark.databricks.acl.dfAclsEnabled"] == "true"
        assert info["custom_tags"]["CostCenter"] == "4711" and info["runtime_engine"] == "PHOTON"
    # ... and the rendered roots say the same, so nothing drifts.
    clusters_tf = (project.root() / "clusters.tf").read_text()
    assert re.search(r'"spark.databricks.acl.dfAclsEnabled" += "true"', clusters_tf)
    assert re.search(r'"CostCenter" += "4711"', clusters_tf)
    plan = project.run("plan", "--summary", str(project.dir / "plan.json"))
    assert plan.returncode == 0, plan.stdout + plan.stderr

    # A daily unattended rotation is not refused for "pending changes besides the token".
    rotated = project.run("rotate", "--auto-approve")
    assert rotated.returncode == 0, rotated.stderr
    for info in store.list_clusters(WORKSPACE_KEY):
        assert store.dlz_access(WORKSPACE_KEY, info["cluster_id"])
    assert project.run("plan").returncode == 0


def test_a_conflict_with_the_policy_fails_the_plan_before_terraform(project: Project) -> None:
    policy_id = _with_policy(project, POLICY)
    project.config["clusters"][0]["autotermination_minutes"] = 120
    project.write_config()
    done = project.run("plan")
    assert done.returncode == 1
    (line,) = _errors(done.stderr)
    assert "clusters.aep-ingest.autotermination_minutes: 120" in line
    assert f"cluster policy 'AEP ingest' ({policy_id}): range 10..90" in line
    assert not (project.root() / ".terraform").exists()  # terraform never ran

    # The provider's default counts too: no autotermination_minutes means 60 is sent.
    project.config["clusters"][0]["autotermination_minutes"] = 60
    project.config["clusters"][1]["custom_tags"] = {"CostCenter": "0815"}
    project.write_config()
    done = project.run("plan")
    (line,) = _errors(done.stderr)
    assert 'clusters.aep-explore.custom_tags.CostCenter: "0815"' in line and 'fixed to "4711"' in line

    project.config["clusters"][1]["custom_tags"] = {}
    project.config["clusters"][1]["policy_id"] = "NOSUCHPOLICY"
    project.write_config()
    done = project.run("plan")
    (line,) = _errors(done.stderr)
    assert "clusters.aep-explore.policy_id: no cluster policy NOSUCHPOLICY" in line
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_the_workspace_refuses_what_the_policy_forbids(project: Project) -> None:
    # The emulator enforces the policy on its own: a policy edited after the plan fails the apply
    # with Databricks' own error, and nothing is half-created.
    _with_policy(project, POLICY)
    plan = project.run("plan", "--out", str(project.dir / "saved.tfplan"))
    assert plan.returncode == 2, plan.stderr
    project.store().edit_policy(
        WORKSPACE_KEY,
        project.config["clusters"][0]["policy_id"],
        {**POLICY, "runtime_engine": {"type": "fixed", "value": "STANDARD"}},
    )
    done = project.run("apply", str(project.dir / "saved.tfplan"), "--auto-approve")
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert 'Cluster validation error: Validation failed for runtime_engine must be STANDARD (is "PHOTON")' in said
    state = json.loads((project.root() / "terraform.tfstate").read_text())
    assert not [r for r in state["resources"] if r["type"] == "databricks_cluster"]


COST_POLICY = {
    # Compute policy reference, "Virtual attribute paths": limits, never request fields.
    "dbus_per_hour": {"type": "range", "maxValue": 10},
    "cluster_type": {"type": "fixed", "value": "all-purpose"},
    # "Special policy values for Databricks Runtime selection".
    "spark_version": {"type": "fixed", "value": "auto:latest-lts", "hidden": True},
    "autotermination_minutes": {"type": "range", "maxValue": 60},
}
LATEST_LTS = "16.4.x-scala2.12"  # the sandbox workspace's newest LTS runtime (provisioner/sandbox/catalog.py)


def test_a_cost_limited_policy_on_the_latest_lts_plans_and_applies(project: Project) -> None:
    for cluster in project.config["clusters"]:
        cluster["spark_version"] = LATEST_LTS
    _with_policy(project, COST_POLICY)
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    store = project.store()
    assert {c["spark_version"] for c in store.list_clusters(WORKSPACE_KEY)} == {LATEST_LTS}
    again = project.run("plan")
    assert again.returncode == 0, again.stdout + again.stderr  # nothing drifts


def test_a_runtime_the_special_value_does_not_resolve_to_is_refused_before_terraform(project: Project) -> None:
    _with_policy(project, COST_POLICY)  # the clusters stay on 15.4.x-scala2.12
    done = project.run("plan")
    assert done.returncode == 1
    (line,) = _errors(done.stderr)
    assert 'clusters.aep-ingest.spark_version: "15.4.x-scala2.12"' in line
    assert f'fixed to "auto:latest-lts" (auto:latest-lts = {LATEST_LTS} or 16.4.x-scala2.13 in this workspace)' in line
    assert not (project.root() / ".terraform").exists()


def test_the_workspace_resolves_special_runtime_values_itself(project: Project) -> None:
    store = project.store()
    store.ensure_workspace(WORKSPACE_KEY)
    policy_id = store.create_policy(WORKSPACE_KEY, "LTS only", COST_POLICY)
    body = {"cluster_name": "c", "num_workers": 0, "autotermination_minutes": 30, "policy_id": policy_id}
    cluster_id = store.create_cluster(WORKSPACE_KEY, dict(body), cluster_source="API", creator="u@example.com")
    assert store.get_cluster(WORKSPACE_KEY, cluster_id)["spark_version"] == LATEST_LTS  # the fixed value, resolved
    with pytest.raises(Exception, match="spark_version must be auto:latest-lts"):
        store.create_cluster(
            WORKSPACE_KEY, {**body, "spark_version": "15.4.x-scala2.12"}, cluster_source="API", creator="u"
        )


def test_a_required_attribute_provision_yaml_cannot_set_takes_the_policy_default(project: Project) -> None:
    availability = {
        "azure_attributes.availability": {
            "type": "allowlist",
            "values": ["SPOT_WITH_FALLBACK_AZURE", "ON_DEMAND_AZURE"],
            "defaultValue": "SPOT_WITH_FALLBACK_AZURE",
        }
    }
    _with_policy(project, availability)
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "apply_policy_default_values = true" in applied.stderr
    for info in project.store().list_clusters(WORKSPACE_KEY):
        assert info["azure_attributes"]["availability"] == "SPOT_WITH_FALLBACK_AZURE"
    assert project.run("plan").returncode == 0

    # Without a default there is no way to satisfy it from provision.yaml: one line saying so.
    availability["azure_attributes.availability"].pop("defaultValue")
    project.store().edit_policy(WORKSPACE_KEY, project.config["clusters"][0]["policy_id"], availability)
    done = project.run("plan")
    (line,) = _errors(done.stderr)
    assert "requires azure_attributes.availability" in line and "provision.yaml cannot set" in line
