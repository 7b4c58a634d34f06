"""Remote state on a real PostgreSQL server (Terraform's `pg` backend), started by these tests.

The server runs from a temporary directory on 127.0.0.1 with a password; the connection
string reaches Terraform only as PG_CONN_STR in its environment. The module's tests run in
file order on one project (each CLI run costs seconds): migrate local → pg, two concurrent
applies on one environment, an interrupted apply, and a clean plan at the end.
"""

from __future__ import annotations

import copy
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioner.config.model import load_config
from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.run.context import RunContext
from provisioner.run.target import RealTarget
from tests.helpers.config import BASE_CONFIG, IDENTITY, WORKSPACE_KEY
from tests.helpers.pg import SCHEMA, PgServer
from tests.helpers.processes import finish, start, wait_until
from tests.helpers.project import Project, workspace_cluster_ids

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

SLOW_START = "5"  # seconds a new sandbox cluster takes to run: a window to act during an apply
LOCKED = "the state is locked by another run"


# ---- the project -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, pg: PgServer) -> Project:
    root = tmp_path_factory.mktemp("pg-project")
    (root / "home").mkdir()
    proj = Project(root, copy.deepcopy(BASE_CONFIG), extra_env={"PG_CONN_STR": pg.conn_str})
    proj.write_config()  # starts on the local backend; the first test moves it to pg
    return proj


def with_backend(backend: dict[str, Any], extra_clusters: int = 0) -> dict[str, Any]:
    config = copy.deepcopy(BASE_CONFIG)
    config["terraform"]["backend"] = backend
    for i in range(extra_clusters):
        config["clusters"].append(
            {
                "name": f"aep-slow-{i}",
                "spark_version": "15.4.x-scala2.12",
                "node_type_id": "Standard_DS3_v2",
                "num_workers": 1,
            }
        )
    return config


def creating(project: Project, pg: PgServer) -> Callable[[], bool]:
    """True once terraform apply is creating a cluster (so it holds the state lock)."""

    def check() -> bool:
        pending = any(c.get("state") == "PENDING" for c in project.store().list_clusters(WORKSPACE_KEY))
        return pending and pg.advisory_locks() > 0

    return check


def managed_cluster_ids(state: dict[str, Any]) -> set[str]:
    return {
        inst["attributes"]["cluster_id"]
        for res in state["resources"]
        if res["type"] == "databricks_cluster"
        for inst in res["instances"]
    }


# ---- without a server ----------------------------------------------------------------------------


def test_conn_str_in_provision_yaml_is_rejected(tmp_path: Path) -> None:
    proj = Project(tmp_path, with_backend({"type": "pg", "conn_str": "postgresql://u:pw@db/tf"}))
    (tmp_path / "home").mkdir()
    proj.write_config()
    done = proj.run("plan")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "terraform.backend.conn_str: secrets do not belong in provision.yaml" in line
    assert "postgresql://u:pw" not in done.stderr + done.stdout
    assert not proj.root().exists()
    with pytest.raises(ConfigError, match="conn_str"):
        load_config(proj.config_path, environ={})


def test_pg_backend_without_pg_conn_str_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    proj = Project(tmp_path, copy.deepcopy(BASE_CONFIG))
    proj.write_config(with_backend({"type": "pg"}))
    done = proj.run("plan")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "terraform.backend: type pg reads its connection string from PG_CONN_STR, which is not set — "
            "export PG_CONN_STR=postgres://user@host/db"
        )
    )
    assert not (proj.root() / ".terraform").exists()


def test_backend_credentials_reach_terraform_only_through_its_environment(tmp_path: Path) -> None:
    proj = Project(tmp_path, with_backend({"type": "pg"}))
    proj.write_config()
    config = load_config(proj.config_path, environ={})
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PG_CONN_STR": "postgresql://u:pw@db/tf",
        "ARM_CLIENT_ID": "id",
        "ARM_CLIENT_SECRET": "arm-secret",
        "ARM_USE_OIDC": "true",
    }
    runner = RunContext(config, Console(color=False), environ, RealTarget(environ)).runner(
        config.environments["default"], None, identity=IDENTITY
    )
    for key in ("PG_CONN_STR", "ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_USE_OIDC"):
        assert runner.env.values[key] == environ[key]


# ---- against the server (in file order) ---------------------------------------------------------


def test_switching_local_to_pg_needs_migrate_state_and_then_moves_the_state(project: Project, pg: PgServer) -> None:
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    local_state = json.loads((project.root() / "terraform.tfstate").read_text())
    assert len(managed_cluster_ids(local_state)) == 2

    project.write_config(with_backend({"type": "pg"}))
    refused = project.run("plan")
    assert refused.returncode == 1
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("error: terraform init in ")
    assert "pass --migrate-state to copy the existing state to the new backend" in message
    assert not pg.query("SELECT 1 FROM information_schema.tables WHERE table_schema = %s", SCHEMA)

    migrated = project.run("plan", "--migrate-state")
    assert migrated.returncode == 0, migrated.stderr  # same infrastructure, same state: no changes
    state = pg.state()  # (Terraform gives the copy a new lineage; the resources are what matter)
    assert len(state["resources"]) == len(local_state["resources"])
    assert managed_cluster_ids(state) == managed_cluster_ids(local_state) == workspace_cluster_ids(project)
    assert 'schema_name = "dlz_default"' in (project.root() / "versions.tf").read_text()
    # The old local copy held the SAS token; once migrated it is removed, not left behind.
    assert not (project.root() / "terraform.tfstate").exists()
    assert not (project.root() / "terraform.tfstate.backup").exists()

    again = project.run("plan")  # no flag needed any more
    assert again.returncode == 0, again.stderr


def test_concurrent_applies_serialize_on_the_lock(project: Project, pg: PgServer) -> None:
    before = pg.state()
    project.write_config(with_backend({"type": "pg"}, extra_clusters=1))

    # 1. Fail fast (the default, --lock-timeout 0s): the second run is refused with a clear line.
    first = start(project, "apply", "--auto-approve", PROVISION_SANDBOX_CLUSTER_START_SECONDS=SLOW_START)
    wait_until(creating(project, pg), "the first apply to be creating its cluster")
    second_code, second_out = finish(start(project, "apply", "--auto-approve"))
    assert first.poll() is None, "the first apply ended before the second one tried the lock"
    first_code, first_out = finish(first)
    assert first_code == 0, first_out[-3000:]
    assert second_code == 1, second_out[-3000:]
    # Refused by the environment's lock (provisioner.lock.pg) before Terraform ran, naming the holder.
    last = second_out.strip().splitlines()[-1]
    assert last.startswith("error: default: another run holds this environment's lock — `provision apply` (host ")
    assert f"pid {first.pid})" in last and "--lock-timeout" in last
    assert "Apply complete" not in second_out

    after = pg.state()
    assert after["lineage"] == before["lineage"] and after["serial"] > before["serial"]
    assert len(managed_cluster_ids(after)) == 3
    assert managed_cluster_ids(after) == workspace_cluster_ids(project), "a cluster outside the state"

    # 2. Wait (--lock-timeout): the second run plans after the first applied, and finds nothing to do.
    project.write_config(with_backend({"type": "pg"}, extra_clusters=2))
    first = start(project, "apply", "--auto-approve", PROVISION_SANDBOX_CLUSTER_START_SECONDS=SLOW_START)
    wait_until(creating(project, pg), "the first apply to be creating its cluster")
    waiter = start(project, "apply", "--auto-approve", "--lock-timeout", "2m")
    first_code, first_out = finish(first)
    waiter_code, waiter_out = finish(waiter)
    assert first_code == 0, first_out[-3000:]
    assert waiter_code == 0, waiter_out[-3000:]
    assert "waiting for `provision apply` (host " in waiter_out  # it waited for the environment's lock
    # It planned only once the first run had applied (else it would have planned a creation).
    assert "no changes — nothing to apply" in waiter_out
    assert "Apply complete" not in waiter_out
    final = pg.state()
    assert final["lineage"] == before["lineage"]
    assert len(managed_cluster_ids(final)) == 4
    assert managed_cluster_ids(final) == workspace_cluster_ids(project)


def test_interrupted_apply_releases_its_lock_and_state_survives(project: Project, pg: PgServer) -> None:
    project.write_config(with_backend({"type": "pg"}, extra_clusters=3))
    apply = start(project, "apply", "--auto-approve", PROVISION_SANDBOX_CLUSTER_START_SECONDS=SLOW_START)
    wait_until(creating(project, pg), "the apply to be creating its cluster")
    apply.send_signal(signal.SIGINT)  # as Ctrl-C would: provision forwards it to terraform
    code, out = finish(apply)
    assert code == 130, out[-3000:]
    assert "Interrupt received" in out
    assert "interrupted: terraform apply stopped" in out

    wait_until(lambda: pg.advisory_locks() == 0, "the state lock to be released", timeout=10)
    plan = project.run("plan")  # --lock-timeout 0s: would fail at once on a leftover lock
    assert plan.returncode in (0, 2), plan.stderr
    assert LOCKED not in plan.stderr

    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    state = pg.state()
    assert len(managed_cluster_ids(state)) == 5
    # Whatever the interrupted run created is in the state: nothing was orphaned or duplicated.
    assert managed_cluster_ids(state) == workspace_cluster_ids(project)

    final = project.run("plan")
    assert final.returncode == 0, final.stderr


def test_no_backend_credentials_in_any_file_of_the_project(project: Project, pg: PgServer) -> None:
    for path in project.dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert pg.password.encode() not in path.read_bytes(), f"the PostgreSQL password is in {path}"
