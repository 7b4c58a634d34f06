"""What the stand-in emulates besides the generated resources, against the workspace emulator,
driven by the real terraform binary: one root applied once (module scope), then read from
Terraform's state and from the emulator's APIs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.provider_root import Root, root_env
from tests.helpers.sandbox import sandbox_pat

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")

ROOT_HCL = """
data "databricks_spark_version" "lts" {
  long_term_support = true
}
data "databricks_node_type" "smallest" {
  local_disk = true
}
data "databricks_current_user" "me" {}

resource "databricks_cluster_policy" "small" {
  name        = "small clusters"
  description = "at most 4 workers"
  definition  = jsonencode({
    "num_workers" : { "type" : "range", "maxValue" : 4 }
  })
}

resource "databricks_instance_pool" "pool" {
  instance_pool_name                    = "pool"
  node_type_id                          = data.databricks_node_type.smallest.id
  idle_instance_autotermination_minutes = 10
  min_idle_instances                    = 0
  azure_attributes {
    availability = "ON_DEMAND_AZURE"
  }
}

resource "databricks_cluster" "shared" {
  cluster_name            = "shared"
  spark_version           = data.databricks_spark_version.lts.id
  node_type_id            = data.databricks_node_type.smallest.id
  num_workers             = 1
  autotermination_minutes = 20
  policy_id               = databricks_cluster_policy.small.id
}

# library blocks and databricks_library on one cluster fight (the provider's docs say so: the
# cluster reads every library once it has library blocks), so each has its own cluster here.
resource "databricks_cluster" "with_libraries" {
  cluster_name            = "with-libraries"
  spark_version           = data.databricks_spark_version.lts.id
  instance_pool_id        = databricks_instance_pool.pool.id
  num_workers             = 1
  autotermination_minutes = 20
  library {
    pypi { package = "requests==2.32.3" }
  }
  library {
    maven { coordinates = "com.example:lib:1.0" }
  }
}

resource "databricks_library" "whl" {
  cluster_id = databricks_cluster.shared.id
  whl        = "/Volumes/main/default/libs/tool-1.0-py3-none-any.whl"
}

resource "databricks_permissions" "cluster" {
  cluster_id = databricks_cluster.shared.id
  access_control {
    group_name       = "users"
    permission_level = "CAN_RESTART"
  }
}

resource "databricks_permissions" "policy" {
  cluster_policy_id = databricks_cluster_policy.small.id
  access_control {
    group_name       = "users"
    permission_level = "CAN_USE"
  }
  access_control {
    group_name       = databricks_group.eng.display_name
    permission_level = "CAN_USE"
  }
}

resource "databricks_permissions" "pool" {
  instance_pool_id = databricks_instance_pool.pool.id
  access_control {
    group_name       = "users"
    permission_level = "CAN_ATTACH_TO"
  }
}

resource "databricks_group" "eng" {
  display_name         = "data-eng"
  allow_cluster_create = true
}

data "databricks_user" "me" {
  user_name = data.databricks_current_user.me.user_name
}

resource "databricks_group_member" "me" {
  group_id  = databricks_group.eng.id
  member_id = data.databricks_user.me.id
}

data "databricks_cluster" "by_name" {
  cluster_name = databricks_cluster.shared.cluster_name
}

data "databricks_clusters" "shared" {
  cluster_name_contains = "SHARED"
  depends_on            = [databricks_cluster.shared]
}

output "lts" { value = data.databricks_spark_version.lts.id }
output "node" { value = data.databricks_node_type.smallest.id }
output "me" { value = data.databricks_current_user.me.user_name }
output "alphanumeric" { value = data.databricks_current_user.me.alphanumeric }
output "by_name" { value = data.databricks_cluster.by_name.cluster_id }
output "ids" { value = data.databricks_clusters.shared.ids }
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox-state"), workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture(scope="module")
def applied(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Root:
    root = Root(tmp_path_factory.mktemp("emulated") / "root", root_env(sandbox))
    root.write(ROOT_HCL)
    root.apply()
    return root


def outputs(root: Root) -> dict[str, Any]:
    state = json.loads((root.path / "terraform.tfstate").read_text())
    return {k: v["value"] for k, v in state["outputs"].items()}


def api(sandbox: Sandbox, path: str, **params: str) -> dict[str, Any]:
    answer = requests.get(
        f"{sandbox.workspace_url(WORKSPACE_HOST)}{path}",
        params=params,
        headers={"Authorization": f"Bearer {sandbox_pat(sandbox)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_second_plan_is_clean(applied: Root) -> None:
    rc, out = applied.plan_rc()
    assert rc == 0, out


def test_data_sources_answer_from_the_workspace(sandbox: Sandbox, applied: Root) -> None:
    out = outputs(applied)
    keys = [v["key"] for v in api(sandbox, "/api/2.1/clusters/spark-versions")["versions"]]
    assert out["lts"] in keys and "LTS" in next(
        v["name"] for v in api(sandbox, "/api/2.1/clusters/spark-versions")["versions"] if v["key"] == out["lts"]
    )
    assert out["lts"].startswith("16.4.")  # the newest LTS of the catalog
    assert out["node"] in [n["node_type_id"] for n in api(sandbox, "/api/2.1/clusters/list-node-types")["node_types"]]
    me = api(sandbox, "/api/2.0/preview/scim/v2/Me")["userName"]
    assert out["me"] == me
    assert out["alphanumeric"] == me.split("@")[0].replace(".", "_").replace("-", "_").lower()
    cluster_id = applied.state_attr("databricks_cluster.shared", "cluster_id")
    assert out["by_name"] == cluster_id
    assert out["ids"] == [cluster_id]
    info = next(
        r["instances"][0]["attributes"]["cluster_info"]
        for r in json.loads((applied.path / "terraform.tfstate").read_text())["resources"]
        if r["type"] == "databricks_cluster" and r["mode"] == "data"
    )
    assert info[0]["spark_version"] == out["lts"] and info[0]["state"] == "RUNNING"


def test_cluster_permissions_are_what_the_provider_put(sandbox: Sandbox, applied: Root) -> None:
    cluster_id = applied.state_attr("databricks_cluster.shared", "cluster_id")
    acl = api(sandbox, f"/api/2.0/permissions/clusters/{cluster_id}")["access_control_list"]
    direct = {
        (e.get("group_name") or e.get("user_name")): p["permission_level"]
        for e in acl
        for p in e["all_permissions"]
        if not p["inherited"]
    }
    me = api(sandbox, "/api/2.0/preview/scim/v2/Me")["userName"]
    # PUT replaced the ACL: the configured entry plus the caller as CAN_MANAGE (AddCurrentUserAsManage).
    assert direct == {"users": "CAN_RESTART", me: "CAN_MANAGE"}
    assert applied.state_attr("databricks_permissions.cluster", "object_type") == "cluster"
    assert applied.state_attr("databricks_permissions.cluster", "id") == f"/clusters/{cluster_id}"


def test_policy_and_pool_permissions(sandbox: Sandbox, applied: Root) -> None:
    policy_id = applied.state_attr("databricks_cluster_policy.small", "policy_id")
    pool_id = applied.state_attr("databricks_instance_pool.pool", "instance_pool_id")
    policy_acl = api(sandbox, f"/api/2.0/permissions/cluster-policies/{policy_id}")
    assert policy_acl["object_type"] == "cluster-policy"
    for group in ("users", "data-eng"):  # a workspace group reads back as a group, not a service principal
        assert {"group_name": group, "all_permissions": [{"permission_level": "CAN_USE", "inherited": False}]} in (
            policy_acl["access_control_list"]
        )
    pool_acl = api(sandbox, f"/api/2.0/permissions/instance-pools/{pool_id}")["access_control_list"]
    assert {"group_name": "users", "all_permissions": [{"permission_level": "CAN_ATTACH_TO", "inherited": False}]} in (
        pool_acl
    )


def test_policy_pool_and_cluster_are_in_the_workspace(sandbox: Sandbox, applied: Root) -> None:
    policy_id = applied.state_attr("databricks_cluster_policy.small", "policy_id")
    policy = api(sandbox, "/api/2.0/policies/clusters/get", policy_id=str(policy_id))
    assert policy["name"] == "small clusters" and policy["description"] == "at most 4 workers"
    assert json.loads(policy["definition"]) == {"num_workers": {"type": "range", "maxValue": 4}}
    pool = api(
        sandbox,
        "/api/2.0/instance-pools/get",
        instance_pool_id=str(applied.state_attr("databricks_instance_pool.pool", "instance_pool_id")),
    )
    assert pool["azure_attributes"] == {"availability": "ON_DEMAND_AZURE"}
    cluster = sandbox.store.get_cluster(
        WORKSPACE_KEY, str(applied.state_attr("databricks_cluster.shared", "cluster_id"))
    )
    assert cluster is not None and cluster["policy_id"] == policy_id


def test_libraries_are_installed_on_the_cluster(sandbox: Sandbox, applied: Root) -> None:
    cluster_id = applied.state_attr("databricks_cluster.shared", "cluster_id")
    statuses = api(sandbox, "/api/2.0/libraries/cluster-status", cluster_id=str(cluster_id))["library_statuses"]
    assert {json.dumps(s["library"], sort_keys=True): s["status"] for s in statuses} == {
        '{"whl": "/Volumes/main/default/libs/tool-1.0-py3-none-any.whl"}': "INSTALLED",
    }
    other = applied.state_attr("databricks_cluster.with_libraries", "cluster_id")
    statuses = api(sandbox, "/api/2.0/libraries/cluster-status", cluster_id=str(other))["library_statuses"]
    assert {json.dumps(s["library"], sort_keys=True): s["status"] for s in statuses} == {
        '{"pypi": {"package": "requests==2.32.3"}}': "INSTALLED",
        '{"maven": {"coordinates": "com.example:lib:1.0"}}': "INSTALLED",
    }
    pooled = sandbox.store.get_cluster(WORKSPACE_KEY, str(other))
    assert pooled is not None and pooled["instance_pool_id"] == applied.state_attr(
        "databricks_instance_pool.pool", "id"
    )
    assert applied.state_attr("databricks_library.whl", "id") == (
        f"{cluster_id}/whl:/Volumes/main/default/libs/tool-1.0-py3-none-any.whl"
    )


def test_group_and_membership(sandbox: Sandbox, applied: Root) -> None:
    group_id = applied.state_attr("databricks_group.eng", "id")
    group = api(sandbox, f"/api/2.0/preview/scim/v2/Groups/{group_id}")
    assert group["displayName"] == "data-eng"
    assert {"value": "allow-cluster-create"} in group.get("entitlements", [])
    me = api(sandbox, "/api/2.0/preview/scim/v2/Me")
    assert me["id"] in [m["value"] for m in group.get("members", [])]


def test_a_change_made_outside_terraform_shows_in_the_next_plan(sandbox: Sandbox, applied: Root) -> None:
    cluster_id = applied.state_attr("databricks_cluster.shared", "cluster_id")
    requests.patch(
        f"{sandbox.workspace_url(WORKSPACE_HOST)}/api/2.0/permissions/clusters/{cluster_id}",
        json={"access_control_list": [{"group_name": "users", "permission_level": "CAN_MANAGE"}]},
        headers={"Authorization": f"Bearer {sandbox_pat(sandbox)}"},
        timeout=10,
    ).raise_for_status()
    rc, out = applied.plan_rc()
    assert rc == 2 and "databricks_permissions.cluster will be updated in-place" in out, out
    applied.apply()  # PUT puts the configured ACL back
    acl = api(sandbox, f"/api/2.0/permissions/clusters/{cluster_id}")["access_control_list"]
    assert [p["permission_level"] for e in acl if e.get("group_name") == "users" for p in e["all_permissions"]] == [
        "CAN_RESTART"
    ]


def test_an_unset_attribute_is_no_change_from_its_zero_value(sandbox: Sandbox, applied: Root) -> None:
    # SDKv2 does not tell null from false/""/0: a zero value set outside Terraform on an
    # attribute the configuration leaves unset shows no diff (as with the real provider).
    cluster_id = str(applied.state_attr("databricks_cluster.shared", "cluster_id"))
    spec = sandbox.store.get_cluster(WORKSPACE_KEY, cluster_id)
    assert spec is not None and "enable_local_disk_encryption" not in spec
    fields = ("cluster_name", "spark_version", "node_type_id", "num_workers", "autotermination_minutes", "policy_id")
    answer = requests.post(
        f"{sandbox.workspace_url(WORKSPACE_HOST)}/api/2.1/clusters/edit",
        json={
            "cluster_id": cluster_id,
            **{k: spec[k] for k in fields},
            "enable_local_disk_encryption": False,
            "single_user_name": "",
        },
        headers={"Authorization": f"Bearer {sandbox_pat(sandbox)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    edited = sandbox.store.get_cluster(WORKSPACE_KEY, cluster_id)
    assert edited is not None and edited["enable_local_disk_encryption"] is False and edited["single_user_name"] == ""
    rc, out = applied.plan_rc()
    assert rc == 0, out
    refreshed = applied.tf("plan", "-refresh-only", "-detailed-exitcode", ok=(0, 2)).stdout
    assert "enable_local_disk_encryption" in refreshed, refreshed  # the state did take the server's false
