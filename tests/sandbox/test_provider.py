"""The stand-in databricks provider driven by the real terraform binary, end to end.

Each test writes a small HCL root in a tmp dir, initialises it offline through the
sandbox's provider mirror, and checks both what Terraform reports and what the workspace
emulator's store holds. Every terraform step is timed (shown with `pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.sandbox import Sandbox
from provisioner.sandbox.provider import ENVIRON_ON_STDIN, SERVE_ONE_COMMAND
from provisioner.terraform import guard
from provisioner.terraform.early import EarlyKeeper
from provisioner.terraform.environment import ChildEnv
from provisioner.terraform.guard import PROVIDER_SERVER_ENV
from provisioner.terraform.process import run
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.processes import cmdline, descendants
from tests.helpers.provider_root import SAS, SECRET_HCL, Root, cluster_hcl, root_env

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox-state"), workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture
def root(sandbox: Sandbox, tmp_path: Path) -> Root:
    return Root(tmp_path / "root", root_env(sandbox))


def test_lifecycle_create_noop_update_replace(sandbox: Sandbox, root: Root) -> None:
    spark_conf = '"fs.azure.sas.c.a.blob.core.windows.net" = databricks_secret.sas.config_reference'
    root.write(SECRET_HCL + cluster_hcl(spark_conf))
    root.apply()

    cluster_id = root.state_attr("databricks_cluster.c", "cluster_id")
    cluster = sandbox.store.get_cluster(WORKSPACE_KEY, str(cluster_id))
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
        cluster = sandbox.store.get_cluster(WORKSPACE_KEY, str(cluster_id))
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
    assert sandbox.store.secret_value(WORKSPACE_KEY, "dlz", "sas") == SAS + "new"
    assert SAS not in applied  # sensitive: never printed

    root.tf("destroy", "-auto-approve")
    assert sandbox.store.get_cluster(WORKSPACE_KEY, str(cluster_id)) is None  # permanent-delete


def test_cluster_deleted_out_of_band_is_recreated(sandbox: Sandbox, root: Root) -> None:
    root.write(cluster_hcl())
    root.apply()
    cluster_id = root.state_attr("databricks_cluster.c", "cluster_id")
    sandbox.store.permanent_delete_cluster(WORKSPACE_KEY, str(cluster_id))

    rc, out = root.plan_rc()
    assert rc == 2 and "databricks_cluster.c will be created" in out
    root.apply()
    assert root.state_attr("databricks_cluster.c", "cluster_id") != cluster_id


def test_policy_fixed_spark_conf_is_a_perpetual_diff(sandbox: Sandbox, root: Root) -> None:
    # Provider docs/resources/cluster.md (and issues #3653, #3985, #4982): keys a policy fixes
    # come back from clusters/get, so a config without them shows a change on every plan.
    policy_id = sandbox.store.create_policy(
        WORKSPACE_KEY, "perpetual", {"spark_conf.spark.databricks.policy": {"type": "fixed", "value": "on"}}
    )
    root.write(cluster_hcl(extra=f'policy_id = "{policy_id}"'))
    root.apply()
    rc, out = root.plan_rc()
    assert rc == 2 and '"spark.databricks.policy" = "on" -> null' in out
    # The documented workaround silences it.
    root.write(cluster_hcl(extra=f'policy_id = "{policy_id}"\n lifecycle {{\n ignore_changes = [spark_conf]\n }}'))
    assert root.plan_rc()[0] == 0


def test_import_cluster_by_id(sandbox: Sandbox, root: Root) -> None:
    cluster_id = sandbox.store.add_cluster(
        WORKSPACE_KEY, {"cluster_name": "dlz", "num_workers": 1, "autotermination_minutes": 60}
    )
    root.write(cluster_hcl())
    root.tf("import", "databricks_cluster.c", cluster_id)
    assert root.state_attr("databricks_cluster.c", "state") == "RUNNING"
    rc, out = root.plan_rc()
    assert rc == 0, out  # the imported cluster reads back exactly as the config describes it
    root.tf("destroy", "-auto-approve")
    assert sandbox.store.get_cluster(WORKSPACE_KEY, str(cluster_id)) is None


def test_cluster_that_fails_to_start_is_deleted_and_create_fails(sandbox: Sandbox, root: Root) -> None:
    # A secret reference that does not resolve makes the start fail (TERMINATED).
    root.write(cluster_hcl('"fs.azure.x" = "{{secrets/missing/key}}"'))
    out = root.tf("apply", "-auto-approve", ok=(1,))
    assert "cannot create cluster" in out.stderr and "permanently deleted" in out.stderr
    leftovers = [c for c in sandbox.store.list_clusters(WORKSPACE_KEY) if "fs.azure.x" in (c.get("spark_conf") or {})]
    assert leftovers == []
    assert json.loads((root.path / "terraform.tfstate").read_text())["resources"] == []


def test_a_failed_pin_keeps_the_cluster_tainted(sandbox: Sandbox, root: Root) -> None:
    # resourceClusterCreate (clusters/resource_cluster.go) sets the id, then pins, and returns the
    # pin's error with the id set: Terraform records the cluster tainted instead of losing it.
    sandbox.store.add_user("pinless@example.com", "dapi-pinless", admin=False)
    before = {c["cluster_id"] for c in sandbox.store.list_clusters(WORKSPACE_KEY)}
    root.write(cluster_hcl(extra="is_pinned = true"))
    out = root.tf("apply", "-auto-approve", ok=(1,), DATABRICKS_TOKEN="dapi-pinless")
    assert "cannot create cluster" in out.stderr and "PERMISSION_DENIED" in out.stderr, out.stderr
    (created,) = [c for c in sandbox.store.list_clusters(WORKSPACE_KEY) if c["cluster_id"] not in before]
    assert not sandbox.store.is_pinned(WORKSPACE_KEY, created["cluster_id"])
    (resource,) = json.loads((root.path / "terraform.tfstate").read_text())["resources"]
    (instance,) = resource["instances"]
    assert instance["status"] == "tainted"
    assert instance["attributes"]["cluster_id"] == created["cluster_id"]
    rc, plan = root.plan_rc(DATABRICKS_TOKEN="dapi-pinless")
    assert rc == 2 and "databricks_cluster.c is tainted, so must be replaced" in plan, plan


def test_zero_workers_without_single_node_settings_is_refused_like_the_provider(sandbox: Sandbox, root: Root) -> None:
    # The provider's Validate() (clusters/resource_cluster.go) refuses it before any API call.
    before = len(sandbox.store.list_clusters(WORKSPACE_KEY))
    root.write(cluster_hcl(extra="num_workers = 0").replace("  num_workers   = 1\n", ""))
    out = root.tf("apply", "-auto-approve", ok=(1,))
    assert "NumWorkers could be 0 only for SingleNode clusters" in out.stderr
    assert len(sandbox.store.list_clusters(WORKSPACE_KEY)) == before
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


def test_later_commands_read_the_schema_answer_an_earlier_one_kept(sandbox: Sandbox, root: Root) -> None:
    # provider/schema_cache.py: the answer is built by the first provider process asked for it and
    # read back by the next commands' (the file is not written again), with the same outcome.
    root.write(cluster_hcl())
    root.apply()
    [kept] = (sandbox.state_dir / "provider-schema").iterdir()
    written = kept.stat().st_mtime_ns
    assert root.plan_rc()[0] == 0
    root.write(cluster_hcl(extra="autotermination_minutes = 30"))
    assert root.plan_rc()[0] == 2
    assert [p.stat().st_mtime_ns for p in (sandbox.state_dir / "provider-schema").iterdir()] == [written]


def test_under_terraforms_keeper_one_provider_process_serves_each_command(
    sandbox: Sandbox, root: Root, tmp_path: Path
) -> None:
    # provisioner/terraform/guard.py starts the server the sandbox names (mirror.PROVIDER_SERVER_ENV)
    # and Terraform reattaches every provider instance of the command to it; raw `terraform`
    # (the test above) starts the launcher once per instance.
    root.write(cluster_hcl())
    stats = tmp_path / "provider-stats"
    stats.mkdir()
    env = ChildEnv({**root.env, "PROVISION_SANDBOX_PROVIDER_STATS": str(stats)})
    counted: list[int] = []
    for args in (["apply", "-auto-approve", "-input=false"], ["plan", "-detailed-exitcode", "-input=false"]):
        lines: list[str] = []
        done = run(["terraform", *args, "-no-color"], cwd=root.path, env=env, out=lines.append)
        assert done.returncode == 0, "\n".join(lines) + done.stderr_tail
        counted.append(len(list(stats.glob("*.json"))) - sum(counted))
    assert counted == [1, 1]
    calls = [json.loads(p.read_text())["calls"] for p in stats.glob("*.json")]
    assert sum(c.get("ApplyResourceChange", 0) for c in calls) == 1  # the cluster was made through it
    assert sum(c.get("ReadResource", 0) for c in calls) == 1  # and read back by the plan, unchanged
    made = sandbox.store.get_cluster(WORKSPACE_KEY, str(root.state_attr("databricks_cluster.c", "cluster_id")))
    assert made is not None and made["cluster_name"] == "dlz"
    assert not [pid for pid in descendants(os.getpid()) if (cmdline(pid) or "").endswith(SERVE_ONE_COMMAND)]


def test_the_stand_in_started_before_its_command_serves_it_with_the_environment_handed_later(
    sandbox: Sandbox, root: Root, tmp_path: Path
) -> None:
    """`provision` starts the keeper and the server while it loads (provisioner/run/early.py):
    the server knows neither the workspace nor the stats directory until the keeper hands it
    the command's environment (ENVIRON_ON_STDIN), and must then serve it as one started then."""
    root.write(cluster_hcl())
    stats = tmp_path / "provider-stats"
    stats.mkdir()
    env = {**root.env, "PROVISION_SANDBOX_PROVIDER_STATS": str(stats)}
    early = EarlyKeeper.start(guard.server_argv(env[PROVIDER_SERVER_ENV]), root.env)
    try:
        deadline = time.monotonic() + 60  # a hang guard: the process, not the time, decides
        while not (waiting := [p for p in descendants(os.getpid()) if (cmdline(p) or "").endswith(ENVIRON_ON_STDIN)]):
            assert time.monotonic() < deadline, "the early server never started"
            time.sleep(0.02)
        lines: list[str] = []
        args = ["terraform", "apply", "-auto-approve", "-input=false", "-no-color"]
        done = run(args, cwd=root.path, env=ChildEnv(env), out=lines.append, early=early)
        assert done.returncode == 0, "\n".join(lines) + done.stderr_tail
    finally:
        early.close()
    [served] = [json.loads(p.read_text()) for p in stats.glob("*.json")]  # the stats directory reached it
    assert [served["pid"]] == waiting  # the server started before the command served all of it
    assert served["calls"].get("ApplyResourceChange") == 1
    made = sandbox.store.get_cluster(WORKSPACE_KEY, str(root.state_attr("databricks_cluster.c", "cluster_id")))
    assert made is not None and made["cluster_name"] == "dlz"


def test_a_second_provider_configuration_under_the_keeper_is_refused_not_shared(sandbox: Sandbox, root: Root) -> None:
    # One process serves the command (serve_one_command), so instances of two configurations
    # would share one provider object and client, which separate processes never do. It says
    # so instead; raw terraform, a process per instance, serves both.
    aliased = cluster_hcl().replace(
        'resource "databricks_cluster" "c" {', 'resource "databricks_cluster" "c" {\n  provider = databricks.other'
    )
    root.write(
        f'provider "databricks" {{\n  alias = "other"\n  host  = "{WORKSPACE_HOST}"\n  token = "x"\n}}\n'
        + aliased
        + SECRET_HCL
    )
    lines: list[str] = []
    done = run(
        ["terraform", "plan", "-input=false", "-no-color"], cwd=root.path, env=ChildEnv(root.env), out=lines.append
    )
    assert done.returncode == 1
    assert "one provider configuration per command" in "\n".join(lines) + done.stderr_tail
    assert root.plan_rc()[0] == 2  # raw terraform: both configurations, each in its own process
