"""The stand-in serves the real provider's whole schema: every configuration the real
provider validates validates here, and the types the sandbox does not emulate refuse to act
with one diagnostic that says so (not Terraform's "does not support", which would be false)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.provider_root import Root, cluster_hcl, root_env

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox-state"), workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture
def root(sandbox: Sandbox, tmp_path: Path) -> Root:
    return Root(tmp_path / "root", root_env(sandbox))


JOB_HCL = """
resource "databricks_job" "nightly" {
  name = "nightly"
  task {
    task_key = "main"
    existing_cluster_id = "0101-000000-abcdefgh"
    notebook_task {
      notebook_path = "/Shared/nightly"
      base_parameters = { day = "mon" }
    }
    library {
      pypi { package = "requests==2.32.3" }
    }
  }
  schedule {
    quartz_cron_expression = "0 0 2 * * ?"
    timezone_id            = "UTC"
  }
  email_notifications {
    on_failure = ["ops@example.com"]
  }
}
"""

EVERY_CLUSTER_BLOCK = """
  instance_pool_id             = null
  ssh_public_keys              = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@example.com"]
  enable_local_disk_encryption = true
  azure_attributes {
    availability       = "SPOT_WITH_FALLBACK_AZURE"
    first_on_demand    = 1
    spot_bid_max_price = -1
  }
  init_scripts {
    workspace { destination = "/Shared/init.sh" }
  }
  init_scripts {
    volumes { destination = "/Volumes/main/default/scripts/init.sh" }
  }
  cluster_log_conf {
    dbfs { destination = "dbfs:/cluster-logs" }
  }
  docker_image {
    url = "databricksruntime/standard:latest"
    basic_auth {
      username = "u"
      password = "p"
    }
  }
  timeouts {
    create = "20m"
  }
"""


def validate(root: Root) -> subprocess.CompletedProcess[str]:
    # `terraform validate` takes no -input flag, which Root.tf adds.
    return subprocess.run(
        ["terraform", "validate", "-no-color"], cwd=root.path, env=root.env, capture_output=True, text=True, timeout=120
    )


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("Error:", "│ Error:"))]


def test_configurations_the_real_provider_accepts_validate(root: Root) -> None:
    root.write(
        JOB_HCL
        + cluster_hcl(extra=EVERY_CLUSTER_BLOCK)
        + """
data "databricks_spark_version" "lts" {
  long_term_support = true
}
data "databricks_node_type" "small" {
  local_disk = true
  min_cores  = 4
}
resource "databricks_sql_endpoint" "wh" {
  name         = "wh"
  cluster_size = "2X-Small"
  tags {
    custom_tags {
      key   = "team"
      value = "dlz"
    }
  }
}
"""
    )
    out = validate(root)
    assert out.returncode == 0 and "The configuration is valid" in out.stdout, out.stdout + out.stderr


def test_what_the_real_schema_refuses_is_refused(root: Root) -> None:
    root.write(cluster_hcl(extra="no_such_attribute = 1\n  library {\n    nonsense = true\n  }"))
    out = validate(root)
    assert out.returncode == 1
    assert 'An argument named "no_such_attribute" is not expected here' in out.stderr
    assert 'An argument named "nonsense" is not expected here' in out.stderr


def test_a_resource_the_sandbox_does_not_emulate_gets_one_diagnostic(sandbox: Sandbox, root: Root) -> None:
    root.write(JOB_HCL)
    out = root.tf("plan", ok=(1,))
    assert errors(out.stderr) == [
        "Error: databricks_job is valid for the real provider but not emulated by the sandbox"
    ], out.stderr
    assert "does not support" not in out.stderr
    assert (
        not (root.path / "terraform.tfstate").exists()
        or json.loads((root.path / "terraform.tfstate").read_text())["resources"] == []
    )


def test_a_data_source_the_sandbox_does_not_emulate_gets_one_diagnostic(root: Root) -> None:
    root.write('data "databricks_jobs" "all" {}\n')
    out = root.tf("plan", ok=(1,))
    assert errors(out.stderr) == [
        "Error: databricks_jobs is valid for the real provider but not emulated by the sandbox"
    ], out.stderr


def test_a_cluster_with_every_block_applies_and_replans_clean(sandbox: Sandbox, root: Root) -> None:
    root.write(cluster_hcl(extra=EVERY_CLUSTER_BLOCK))
    root.apply()
    cluster_id = str(root.state_attr("databricks_cluster.c", "cluster_id"))
    spec = sandbox.store.get_cluster(WORKSPACE_KEY, cluster_id)
    assert spec is not None
    # What the provider sends (common.DataToStructPointer): blocks with max_items 1 as objects.
    assert spec["azure_attributes"] == {
        "availability": "SPOT_WITH_FALLBACK_AZURE",
        "first_on_demand": 1,
        "spot_bid_max_price": -1,
    }
    assert spec["init_scripts"] == [
        {"workspace": {"destination": "/Shared/init.sh"}},
        {"volumes": {"destination": "/Volumes/main/default/scripts/init.sh"}},
    ]
    assert spec["cluster_log_conf"] == {"dbfs": {"destination": "dbfs:/cluster-logs"}}
    assert spec["docker_image"]["url"] == "databricksruntime/standard:latest"
    assert spec["enable_local_disk_encryption"] is True
    assert spec["ssh_public_keys"] == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@example.com"]
    assert "timeouts" not in spec  # Terraform's, not the API's
    rc, out = root.plan_rc()
    assert rc == 0, out
