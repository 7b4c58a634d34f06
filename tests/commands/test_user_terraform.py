"""A user's own Terraform beside the generated files plans and applies on the sandbox (issue 23,
"Done when"): `terraform/dev/user.tf` with the data sources and resources users write most,
through `provision plan/apply --sandbox` and the real terraform, answered by the workspace
emulator; and a type the sandbox does not emulate gets one diagnostic naming it.

One project is applied once for the module (cluster starts dominate the cost)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import BASE_CONFIG
from tests.helpers.project import Project, cluster_ids, make_project
from tests.helpers.sandbox import sandbox_pat

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")

USER_TF = """
data "databricks_spark_version" "lts" {
  long_term_support = true
}

data "databricks_node_type" "smallest" {
  local_disk = true
}

data "databricks_current_user" "me" {}

resource "databricks_permissions" "ingest" {
  cluster_id = databricks_cluster.aep-ingest.id
  access_control {
    group_name       = "users"
    permission_level = "CAN_RESTART"
  }
}

resource "databricks_cluster_policy" "small" {
  name = "${data.databricks_current_user.me.alphanumeric}-small"
  definition = jsonencode({
    "spark_version" : { "type" : "fixed", "value" : data.databricks_spark_version.lts.id },
    "node_type_id" : { "type" : "fixed", "value" : data.databricks_node_type.smallest.id }
  })
}

resource "databricks_library" "requests" {
  cluster_id = databricks_cluster.aep-explore.id
  pypi {
    package = "requests==2.32.3"
  }
}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = make_project(tmp_path_factory.mktemp("user-tf"), environments={"dev": {}})
    rendered = project.run("render", "--env", "dev")
    assert rendered.returncode == 0, rendered.stderr
    (project.root("dev") / "user.tf").write_text(USER_TF)
    return project


@pytest.fixture(scope="module")
def planned(project: Project) -> Any:
    return project.run("plan", "--env", "dev")


@pytest.fixture(scope="module")
def applied(project: Project, planned: Any) -> Any:
    return project.run("apply", "--env", "dev", "--auto-approve")


def workspace_get(project: Project, path: str, **params: str) -> dict[str, Any]:
    """A GET on the project's sandbox workspace, through a sandbox started on its state dir."""
    host = BASE_CONFIG["databricks"]["host"]
    with Sandbox(project.sandbox_dir, workspace_hosts=[host]) as sandbox:
        answer = requests.get(
            f"{sandbox.workspace_url(host)}{path}",
            params=params,
            headers={"Authorization": f"Bearer {sandbox_pat(sandbox)}"},
            timeout=10,
        )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_user_file_plans_with_the_generated_root(planned: Any) -> None:
    assert planned.returncode in (0, 2), planned.stderr
    assert "does not support" not in planned.stdout + planned.stderr
    assert "not emulated" not in planned.stdout + planned.stderr


def test_the_user_file_applies_and_the_permissions_are_in_the_workspace(project: Project, applied: Any) -> None:
    assert applied.returncode == 0, applied.stderr
    ingest = cluster_ids(project, "dev")["aep-ingest"]
    acl = workspace_get(project, f"/api/2.0/permissions/clusters/{ingest}")["access_control_list"]
    users = [p for e in acl if e.get("group_name") == "users" for p in e["all_permissions"]]
    assert users == [{"permission_level": "CAN_RESTART", "inherited": False}]


def test_data_sources_answered_from_the_emulator(project: Project, applied: Any) -> None:
    assert applied.returncode == 0, applied.stderr
    state = json.loads((project.root("dev") / "terraform.tfstate").read_text())
    data = {r["type"]: r["instances"][0]["attributes"] for r in state["resources"] if r["mode"] == "data"}
    versions = workspace_get(project, "/api/2.1/clusters/spark-versions")["versions"]
    lts = data["databricks_spark_version"]["id"]
    assert "LTS" in next(v["name"] for v in versions if v["key"] == lts)
    node_types = workspace_get(project, "/api/2.1/clusters/list-node-types")["node_types"]
    assert data["databricks_node_type"]["id"] in [n["node_type_id"] for n in node_types]
    me = workspace_get(project, "/api/2.0/preview/scim/v2/Me")
    assert data["databricks_current_user"]["user_name"] == me["userName"]
    policies = workspace_get(project, "/api/2.0/policies/clusters/list")["policies"]
    policy = next(p for p in policies if p["name"].endswith("-small"))
    assert json.loads(policy["definition"])["spark_version"] == {"type": "fixed", "value": lts}


def test_the_library_is_installed(project: Project, applied: Any) -> None:
    assert applied.returncode == 0, applied.stderr
    explore = cluster_ids(project, "dev")["aep-explore"]
    statuses = workspace_get(project, "/api/2.0/libraries/cluster-status", cluster_id=explore)["library_statuses"]
    assert [(s["library"], s["status"]) for s in statuses] == [({"pypi": {"package": "requests==2.32.3"}}, "INSTALLED")]


def test_a_second_plan_has_no_changes(project: Project, applied: Any) -> None:
    assert applied.returncode == 0, applied.stderr
    again = project.run("plan", "--env", "dev")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_resource_the_sandbox_does_not_emulate_gets_one_diagnostic(project: Project, applied: Any) -> None:
    job = project.root("dev") / "job.tf"
    job.write_text(
        'resource "databricks_job" "nightly" {\n  name = "nightly"\n  task {\n    task_key = "main"\n'
        "    existing_cluster_id = databricks_cluster.aep-ingest.id\n"
        '    notebook_task { notebook_path = "/Shared/nightly" }\n  }\n}\n'
    )
    try:
        done = project.run("plan", "--env", "dev")
    finally:
        job.unlink()
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    # Terraform's diagnostics (provision's own `error:` line quotes the first one).
    diagnostics = [line for line in text.splitlines() if line.startswith("Error:")]
    assert diagnostics == ["Error: databricks_job is valid for the real provider but not emulated by the sandbox"], text
    assert "does not support" not in text
