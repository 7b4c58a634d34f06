"""The stand-in databricks provider driven by the real terraform binary, end to end.

Each test writes a small HCL root in a tmp dir, initialises it offline through the
sandbox's provider mirror, and checks both what Terraform reports and what the workspace
emulator's store holds. Every terraform step is timed (shown with `pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.sandbox import Sandbox, workspace_key

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")

REPO = Path(__file__).resolve().parents[2]
HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
WS = workspace_key(HOST)
SAS = "sv=2020-10-02&sr=c&sp=racwdlm&sig=abc%2Fdef%3D"

HEADER = f"""
terraform {{
  required_providers {{
    databricks = {{ source = "databricks/databricks", version = "~> 1.99" }}
  }}
}}
provider "databricks" {{
  host = "{HOST}"
}}
"""


def cluster_hcl(spark_conf: str = "", extra: str = "") -> str:
    return f"""
resource "databricks_cluster" "c" {{
  cluster_name  = "dlz"
  spark_version = "15.4.x-scala2.12"
  node_type_id  = "Standard_DS3_v2"
  num_workers   = 1
  spark_conf = {{ {spark_conf} }}
  {extra}
}}
"""


SECRET_HCL = """
variable "sas" {
  type      = string
  sensitive = true
}
resource "databricks_secret_scope" "s" {
  name = "dlz"
}
resource "databricks_secret" "sas" {
  scope        = databricks_secret_scope.s.name
  key          = "sas"
  string_value = var.sas
}
"""


class Root:
    """One Terraform root dir plus the environment of a sandbox run."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.mkdir()

    def write(self, hcl: str) -> None:
        (self.path / "main.tf").write_text(HEADER + hcl)
        if not (self.path / ".terraform").exists():
            self.tf("init")  # offline: only the sandbox mirror can provide databricks/databricks

    def tf(self, *args: str, ok: tuple[int, ...] = (0,), **env: str) -> subprocess.CompletedProcess[str]:
        started = time.perf_counter()
        proc = subprocess.run(
            ["terraform", args[0], "-no-color", "-input=false", *args[1:]],
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(f"terraform {args[0]:<8} {time.perf_counter() - started:5.2f}s  rc={proc.returncode}")
        assert proc.returncode in ok, proc.stdout + proc.stderr
        return proc

    def apply(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.tf("apply", "-auto-approve", **env)

    def plan_rc(self, **env: str) -> tuple[int, str]:
        proc = self.tf("plan", "-detailed-exitcode", ok=(0, 2), **env)
        return proc.returncode, proc.stdout

    def state_attr(self, address: str, name: str) -> object:
        """An attribute of a resource in the (local) state file."""
        state = json.loads((self.path / "terraform.tfstate").read_text())
        for resource in state["resources"]:
            if f"{resource['type']}.{resource['name']}" == address:
                return resource["instances"][0]["attributes"][name]
        raise AssertionError(f"{address} not in state")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox-state"), workspace_hosts=[HOST]) as sb:
        yield sb


@pytest.fixture
def root(sandbox: Sandbox, tmp_path: Path) -> Root:
    # A clean environment: no caller TF_* variable may inject flags or another CLI config
    # (this machine sets TF_CLI_CONFIG_FILE to a file that does not exist).
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        sandbox.terraform_env(),
        TF_IN_AUTOMATION="1",
        DATABRICKS_TOKEN=sandbox.databricks_token.reveal(),  # the env fallback, as for real
        TF_VAR_sas=SAS,
        # The provider runs as `python -m provisioner.sandbox.provider`: from a source
        # checkout the package must be importable by that interpreter.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    return Root(tmp_path / "root", env)


def test_lifecycle_create_noop_update_replace(sandbox: Sandbox, root: Root) -> None:
    spark_conf = '"fs.azure.sas.c.a.blob.core.windows.net" = databricks_secret.sas.config_reference'
    root.write(SECRET_HCL + cluster_hcl(spark_conf))
    root.apply()

    cluster_id = root.state_attr("databricks_cluster.c", "cluster_id")
    cluster = sandbox.store.get_cluster(WS, cluster_id)
    assert cluster is not None and cluster["state"] == "RUNNING"  # create waited
    assert cluster["spark_conf"] == {"fs.azure.sas.c.a.blob.core.windows.net": "{{secrets/dlz/sas}}"}
    assert cluster["autotermination_minutes"] == 60 and cluster["num_workers"] == 1  # SDKv2 default
    rc, out = root.plan_rc()
    assert rc == 0, out  # a fresh apply re-plans clean

    # spark_conf change: update in place, and apply returns while the cluster restarts.
    root.write(SECRET_HCL + cluster_hcl(spark_conf + '\n "spark.speculation" = "true"'))
    rc, out = root.plan_rc()
    assert rc == 2 and "will be updated in-place" in out and "1 to change, 0 to destroy" in out
    slow_start, sandbox.store.cluster_start_seconds = sandbox.store.cluster_start_seconds, 60.0
    try:
        root.apply()
        cluster = sandbox.store.get_cluster(WS, cluster_id)
        assert cluster is not None and cluster["state"] == "RESTARTING"
        assert cluster["spark_conf"]["spark.speculation"] == "true"
    finally:
        sandbox.store.cluster_start_seconds = slow_start

    # A new secret value: no update exists, so destroy-then-create. The new secret's
    # config_reference is unknown until created, so the cluster's spark_conf shows an
    # in-place update too (an SDKv2 computed attribute is unknown in every create plan).
    rc, out = root.plan_rc(TF_VAR_sas=SAS + "new")
    assert rc == 2 and "databricks_secret.sas must be replaced" in out, out
    assert "databricks_cluster.c will be updated in-place" in out
    assert "1 to add, 1 to change, 1 to destroy" in out
    applied = root.apply(TF_VAR_sas=SAS + "new").stdout
    assert applied.index("databricks_secret.sas: Destroying") < applied.index("databricks_secret.sas: Creating")
    assert sandbox.store.secret_value(WS, "dlz", "sas") == SAS + "new"
    assert SAS not in applied  # sensitive: never printed

    root.tf("destroy", "-auto-approve")
    assert sandbox.store.get_cluster(WS, cluster_id) is None  # permanent-delete


def test_cluster_deleted_out_of_band_is_recreated(sandbox: Sandbox, root: Root) -> None:
    root.write(cluster_hcl())
    root.apply()
    cluster_id = root.state_attr("databricks_cluster.c", "cluster_id")
    sandbox.store.permanent_delete_cluster(WS, cluster_id)

    rc, out = root.plan_rc()
    assert rc == 2 and "databricks_cluster.c will be created" in out
    root.apply()
    assert root.state_attr("databricks_cluster.c", "cluster_id") != cluster_id


def test_policy_fixed_spark_conf_is_a_perpetual_diff(sandbox: Sandbox, root: Root) -> None:
    # Provider docs/resources/cluster.md (and issues #3653, #3985, #4982): keys a policy fixes
    # come back from clusters/get, so a config without them shows a change on every plan.
    policy_id = sandbox.store.create_policy(
        WS, "perpetual", {"spark_conf.spark.databricks.policy": {"type": "fixed", "value": "on"}}
    )
    root.write(cluster_hcl(extra=f'policy_id = "{policy_id}"'))
    root.apply()
    rc, out = root.plan_rc()
    assert rc == 2 and '"spark.databricks.policy" = "on" -> null' in out
    # The documented workaround silences it.
    root.write(cluster_hcl(extra=f'policy_id = "{policy_id}"\n lifecycle {{\n ignore_changes = [spark_conf]\n }}'))
    assert root.plan_rc()[0] == 0


def test_import_cluster_by_id(sandbox: Sandbox, root: Root) -> None:
    cluster_id = sandbox.store.add_cluster(WS, {"cluster_name": "dlz", "num_workers": 1, "autotermination_minutes": 60})
    root.write(cluster_hcl())
    root.tf("import", "databricks_cluster.c", cluster_id)
    assert root.state_attr("databricks_cluster.c", "state") == "RUNNING"
    rc, out = root.plan_rc()
    assert rc == 0, out  # the imported cluster reads back exactly as the config describes it
    root.tf("destroy", "-auto-approve")
    assert sandbox.store.get_cluster(WS, cluster_id) is None


def test_cluster_that_fails_to_start_is_deleted_and_create_fails(sandbox: Sandbox, root: Root) -> None:
    # A secret reference that does not resolve makes the start fail (TERMINATED).
    root.write(cluster_hcl('"fs.azure.x" = "{{secrets/missing/key}}"'))
    out = root.tf("apply", "-auto-approve", ok=(1,))
    assert "cannot create cluster" in out.stderr and "permanently deleted" in out.stderr
    leftovers = [c for c in sandbox.store.list_clusters(WS) if "fs.azure.x" in (c.get("spark_conf") or {})]
    assert leftovers == []
    assert json.loads((root.path / "terraform.tfstate").read_text())["resources"] == []


def test_zero_workers_without_single_node_settings_is_refused_like_the_provider(sandbox: Sandbox, root: Root) -> None:
    # The provider's Validate() (clusters/resource_cluster.go) refuses it before any API call.
    before = len(sandbox.store.list_clusters(WS))
    root.write(cluster_hcl(extra="num_workers = 0").replace("  num_workers   = 1\n", ""))
    out = root.tf("apply", "-auto-approve", ok=(1,))
    assert "NumWorkers could be 0 only for SingleNode clusters" in out.stderr
    assert len(sandbox.store.list_clusters(WS)) == before
    single = 'kind = "CLASSIC_PREVIEW"\n  is_single_node = true\n  num_workers = 0'
    root.write(cluster_hcl(extra=single).replace("  num_workers   = 1\n", ""))
    root.apply()
    assert root.plan_rc()[0] == 0


def test_a_plan_asks_the_provider_for_its_schema_once(sandbox: Sandbox, root: Root, tmp_path: Path) -> None:
    # The stand-in declares GetProviderSchemaOptional on its schema answer, as the real
    # (SDKv2) provider does, so Terraform serves its later provider processes from its
    # process-wide cache: one schema request per command, not one per provider process.
    root.write(cluster_hcl())
    root.apply()
    stats = tmp_path / "provider-stats"
    stats.mkdir()
    assert root.plan_rc(PROVISION_SANDBOX_PROVIDER_STATS=str(stats))[0] == 0
    processes = [json.loads(p.read_text()) for p in stats.glob("*.json")]
    assert len(processes) >= 2  # schema, validate, plan: Terraform starts the provider more than once
    assert sum(p["calls"].get("GetProviderSchema", 0) for p in processes) == 1
    assert sum(p["calls"].get("ReadResource", 0) for p in processes) == 1
