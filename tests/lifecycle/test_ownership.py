"""Issue 11 item 3: cluster owners and secret scope ACLs, end to end on the sandbox.

A `{{secrets/…}}` reference resolves with the cluster owner's permissions: the owner needs
READ on the scope, directly or through a group; only the owner may add one
(docs.databricks.com security/secrets/secrets-spark-conf-env-var). The emulator enforces
both; `plan`, `apply` and `adopt` check them first; `sas.readers` grants READ.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.sandbox import Sandbox
from provisioner.sandbox.store import SANDBOX_USER
from tests.helpers.config import BASE_CONFIG, DATABRICKS_PAT, ORG, SANDBOX, WORKSPACE_KEY
from tests.helpers.output import error_lines, no_secrets
from tests.helpers.project import Project, access, applied, cluster_ids, make_project, revocations, token
from tests.helpers.sandbox import sandbox_workspace

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

SCOPE = "aep-dlz"
REFERENCE = "{{secrets/aep-dlz/dlz-sas-token}}"
BOB = "bob@example.com"
ANA = "ana@example.com"
GROUP = "data-engineers"
BOBS = {"cluster_name": "bobs-cluster", "spark_version": "15.4.x-scala2.12", "num_workers": 1}


def sas_key(project: Project) -> str:
    dlz = project.store().dlz_credentials(ORG, SANDBOX)
    return f"fs.azure.sas.{dlz['containerName']}.{dlz['storageAccountName']}.blob.core.windows.net"


def wait_for(store: Any, cid: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while store.get_cluster(WORKSPACE_KEY, cid)["state"] not in states and time.monotonic() < deadline:
        time.sleep(0.1)
    cluster: dict[str, Any] = store.get_cluster(WORKSPACE_KEY, cid)
    return cluster


def warnings(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("warning:")]


def test_readers_become_read_grants_and_initial_manage_principal_passes_through(tmp_path: Path) -> None:
    sas: dict[str, Any] = {"mode": "secret_scope", "secret_scope": SCOPE, "secret_key": "dlz-sas-token"}
    sas.update(readers=["data-engineers", "alice@example.com"], initial_manage_principal="users")
    project = applied(make_project(tmp_path, sas=sas))

    assert project.store().scope_acls(WORKSPACE_KEY, SCOPE) == {
        "users": "MANAGE",
        "data-engineers": "READ",
        "alice@example.com": "READ",
    }
    assert project.run("plan").returncode == 0
    assert all(access(project).values())


def test_an_owner_without_read_fails_plan_early_and_sas_readers_fixes_it(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    store = project.store()
    # Someone takes the owner's access away (here: the creator's MANAGE, the scope's only entry).
    store.delete_scope_acl(WORKSPACE_KEY, SCOPE, SANDBOX_USER)

    # The owner is a workspace admin: the sandbox resolves its reference anyway (Microsoft,
    # "Workspace secret scopes": admins "can access and read Databricks secrets"); no source
    # says a real start does, so the tool still asks for an explicit READ, saying why.
    cid = cluster_ids(project)["aep-explore"]
    store.restart_cluster(WORKSPACE_KEY, cid)
    assert wait_for(store, cid, "RUNNING", "TERMINATED")["state"] == "RUNNING"

    planned = project.run("plan")
    assert planned.returncode == 1
    errors = error_lines(planned)
    assert len(errors) == 1, planned.stderr
    facts = ("aep-ingest", "aep-explore", SANDBOX_USER, "is a workspace admin without an explicit READ", "sas.readers")
    for fact in facts:
        assert fact in errors[0]
    no_secrets(planned, token(project))

    # A rotation restarts the clusters right after AEP's refresh: it stops before refreshing.
    before = token(project)
    rotated = project.run("rotate", "--auto-approve", "--timeout", "60")
    assert rotated.returncode == 1
    (line,) = error_lines(rotated)
    assert "without an explicit READ on secret scope aep-dlz" in line
    assert token(project) == before and revocations(project) == 0  # AEP was not asked to refresh
    no_secrets(rotated, before)

    project.write_config({**project.config, "sas": {**project.config["sas"], "readers": [SANDBOX_USER]}})
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert store.scope_acls(WORKSPACE_KEY, SCOPE) == {SANDBOX_USER: "READ"}
    store.restart_cluster(WORKSPACE_KEY, cid)
    wait_for(store, cid, "RUNNING")
    assert access(project) == {"aep-ingest": True, "aep-explore": True}


def test_adopt_refuses_a_cluster_this_run_does_not_own_or_whose_owner_cannot_read_the_scope(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    store = project.store()
    before = project.config_path.read_text()

    # Bob's cluster would gain the reference, and only its owner may add one.
    plain = store.add_cluster(WORKSPACE_KEY, BOBS, creator=BOB)
    refused = project.run("adopt", "--cluster-id", plain, "--name", "bobs")
    assert refused.returncode == 1
    (line,) = error_lines(refused)
    for fact in (f"cluster bobs ({plain}) is owned by {BOB}, not by {SANDBOX_USER}", "only a cluster's owner may add"):
        assert fact in line
    assert f"clusters change-owner {plain} {SANDBOX_USER}" in line and "sas.mode: inline" in line
    assert project.config_path.read_text() == before  # nothing written

    # One that holds the reference already keeps it; then its owner must be able to read the scope.
    holding = store.add_cluster(WORKSPACE_KEY, {**BOBS, "spark_conf": {sas_key(project): REFERENCE}}, creator=BOB)
    refused = project.run("adopt", "--cluster-id", holding, "--name", "bobs")
    assert refused.returncode == 1
    (line,) = error_lines(refused)
    assert f"{BOB} lacks READ on secret scope aep-dlz" in line and "sas.readers" in line
    assert project.config_path.read_text() == before

    project.write_config({**project.config, "sas": {**project.config["sas"], "readers": [BOB]}})
    adopted = project.run("adopt", "--cluster-id", holding, "--name", "bobs")
    assert adopted.returncode == 0, adopted.stderr


def test_only_the_owner_may_add_the_reference_until_an_admin_hands_the_cluster_over(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    store = project.store()
    cid = store.add_cluster(WORKSPACE_KEY, BOBS, creator=BOB)
    entry = {"name": "bobs", **BOBS, "node_type_id": "Standard_DS3_v2", "autotermination_minutes": 60}
    project.write_config({**project.config, "clusters": [*project.config["clusters"], {**entry, "import_id": cid}]})

    # The tool stops before Terraform changes anything, naming owner, principal and the fix.
    refused = project.run("apply", "--auto-approve")
    assert refused.returncode == 1
    (line,) = error_lines(refused)
    assert f"cluster bobs ({cid}) is owned by {BOB}, not by {SANDBOX_USER}" in line
    assert "bobs" not in cluster_ids(project)
    assert REFERENCE not in str(store.get_cluster(WORKSPACE_KEY, cid).get("spark_conf"))
    no_secrets(refused, token(project))

    host = BASE_CONFIG["databricks"]["host"]
    with Sandbox(project.sandbox_dir, workspace_hosts=[host]) as sandbox:
        # Terraform on its own, past our check: the workspace refuses the provider's clusters/edit.
        sandbox.workspace.add_token(DATABRICKS_PAT)
        raw = subprocess.run(
            ["terraform", "apply", "-auto-approve", "-input=false", "-no-color"],
            cwd=project.root(),
            env={**project.env(DATABRICKS_AUTH_TYPE="pat"), **sandbox.terraform_env()},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert raw.returncode == 1, raw.stdout
        said = " ".join(raw.stderr.split())  # Terraform wraps long lines
        assert f"403 PERMISSION_DENIED: POST /api/2.1/clusters/edit: User {SANDBOX_USER} is not the owner" in said
        assert REFERENCE not in str(store.get_cluster(WORKSPACE_KEY, cid).get("spark_conf"))

        # clusters/change-owner: admins only, and only while the cluster is terminated.
        clusters = sandbox_workspace(sandbox, host).sdk.clusters  # databricks-sdk's ClustersAPI.change_owner
        from databricks.sdk.errors.base import DatabricksError

        with pytest.raises(DatabricksError) as running:
            clusters.change_owner(cid, SANDBOX_USER)
        assert running.value.error_code == "INVALID_STATE"
        store.delete_cluster(WORKSPACE_KEY, cid)
        wait_for(store, cid, "TERMINATED")
        clusters.change_owner(cid, SANDBOX_USER)
    assert store.get_cluster(WORKSPACE_KEY, cid)["creator_user_name"] == SANDBOX_USER

    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert store.get_cluster(WORKSPACE_KEY, cid)["spark_conf"][sas_key(project)] == REFERENCE


def test_a_single_user_cluster_resolves_the_secret_as_its_owner_not_its_assigned_user(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    dedicated = {"data_security_mode": "SINGLE_USER", "single_user_name": ANA}
    project.config["clusters"][1].update(dedicated)
    project.write_config()
    # Ana's dedicated cluster runs no command of the run's principal, so no probe (issue 22, item 4).
    done = project.run("apply", "--auto-approve", "--no-verify")
    assert done.returncode == 0, done.stderr
    store = project.store()
    explore = store.get_cluster(WORKSPACE_KEY, cluster_ids(project)["aep-explore"])
    assert (explore["creator_user_name"], explore["single_user_name"]) == (SANDBOX_USER, ANA)
    assert ANA not in store.scope_acls(WORKSPACE_KEY, SCOPE)
    assert access(project) == {"aep-ingest": True, "aep-explore": True}  # Ana's (missing) READ is not asked

    # The other way round: assigned to this run (which can read), owned by Bob (who cannot).
    spec = {**BOBS, **dedicated, "single_user_name": SANDBOX_USER, "spark_conf": {sas_key(project): REFERENCE}}
    cid = store.add_cluster(WORKSPACE_KEY, spec, creator=BOB, state="TERMINATED")
    store.start_cluster(WORKSPACE_KEY, cid)
    failed = wait_for(store, cid, "RUNNING", "TERMINATED")
    assert failed["state"] == "TERMINATED" and f"the cluster owner {BOB} lacks READ" in failed["state_message"]
    refused = project.run("adopt", "--cluster-id", cid, "--name", "bobs")
    assert refused.returncode == 1
    (line,) = error_lines(refused)
    assert f"its owner {BOB} lacks READ on secret scope aep-dlz" in line


def test_read_through_a_group_counts_at_start_and_in_the_preflight(tmp_path: Path) -> None:
    sas = {**BASE_CONFIG["sas"], "readers": [GROUP]}
    project = applied(make_project(tmp_path, sas=sas))
    store = project.store()
    store.delete_scope_acl(WORKSPACE_KEY, SCOPE, SANDBOX_USER)  # READ only through the group now
    cid = cluster_ids(project)["aep-explore"]

    # This run owns the clusters and is not in the group (SCIM Me says so): refused.
    planned = project.run("plan")
    assert planned.returncode == 1
    (line,) = error_lines(planned)
    assert f"its owner {SANDBOX_USER} is a workspace admin without an explicit READ on secret scope aep-dlz" in line

    store.add_group_member(GROUP, SANDBOX_USER)
    planned = project.run("plan")
    assert planned.returncode == 0, planned.stderr
    store.restart_cluster(WORKSPACE_KEY, cid)
    assert wait_for(store, cid, "RUNNING", "TERMINATED")["state"] == "RUNNING"
    assert access(project)["aep-explore"]


def test_another_owners_groups_are_read_by_an_admin_and_a_non_admin_gets_a_warning(tmp_path: Path) -> None:
    sas = {**BASE_CONFIG["sas"], "readers": [GROUP]}
    project = applied(make_project(tmp_path, sas=sas))
    store = project.store()
    spec = {**BOBS, "spark_conf": {sas_key(project): REFERENCE}}
    cid = store.add_cluster(WORKSPACE_KEY, spec, creator=BOB, state="TERMINATED")
    store.set_cluster_permission(WORKSPACE_KEY, cid, SANDBOX_USER, "CAN_MANAGE")

    # An admin reads Bob's groups (SCIM Users with `groups`): he is not in the group.
    refused = project.run("adopt", "--cluster-id", cid, "--name", "bobs")
    assert refused.returncode == 1
    (line,) = error_lines(refused)
    assert f"its owner {BOB} lacks READ on secret scope aep-dlz" in line

    store.add_group_member(GROUP, BOB)
    store.start_cluster(WORKSPACE_KEY, cid)
    assert wait_for(store, cid, "RUNNING", "TERMINATED")["state"] == "RUNNING"  # the group's READ resolves it

    # A non-admin sees names and ids only: the group may or may not hold Bob — a warning, not an error.
    store.set_admin(SANDBOX_USER, False)
    adopted = project.run("adopt", "--cluster-id", cid, "--name", "bobs")
    assert adopted.returncode == 0, adopted.stderr
    (warned,) = [w for w in warnings(adopted) if BOB in w]
    assert GROUP in warned and "workspace admins only" in warned
    no_secrets(adopted, token(project))

    # Managing Bob's cluster without being its owner: any edit that keeps the reference is allowed.
    store.set_admin(SANDBOX_USER, True)
    config = yaml.safe_load(project.config_path.read_text())
    (bobs,) = [c for c in config["clusters"] if c["name"] == "bobs"]
    bobs["autotermination_minutes"] = 30
    project.write_config(config)
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    after = store.get_cluster(WORKSPACE_KEY, cid)
    assert after["autotermination_minutes"] == 30 and after["spark_conf"][sas_key(project)] == REFERENCE
    assert after["creator_user_name"] == BOB
