"""Issue 11 item 3: cluster owners and secret scope ACLs, end to end on the sandbox.

A `{{secrets/…}}` reference resolves with the cluster owner's permissions: the owner needs
READ on the scope (docs.databricks.com security/secrets/secrets-spark-conf-env-var). The
emulator enforces it at start; `plan` and `apply` check it first; `sas.readers` grants it.
"""

from __future__ import annotations

import time
from pathlib import Path

from provisioner.sandbox.store import SANDBOX_USER
from tests.lifecycle.conftest import WS, access, applied, cluster_ids, error_lines, make_project, no_secrets, token

SCOPE = "aep-dlz"


def test_readers_become_read_grants_and_initial_manage_principal_passes_through(tmp_path: Path) -> None:
    sas = {"mode": "secret_scope", "secret_scope": SCOPE, "secret_key": "dlz-sas-token"}
    sas.update(readers=["data-engineers", "alice@example.com"], initial_manage_principal="users")
    project = applied(make_project(tmp_path, sas=sas))

    assert project.store().scope_acls(WS, SCOPE) == {
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
    store.delete_scope_acl(WS, SCOPE, SANDBOX_USER)

    # The workspace resolves the reference as the owner at start: the restart fails.
    cid = cluster_ids(project)["aep-explore"]
    store.restart_cluster(WS, cid)
    deadline = time.monotonic() + 30
    while store.get_cluster(WS, cid)["state"] not in ("RUNNING", "TERMINATED") and time.monotonic() < deadline:
        time.sleep(0.1)
    failed = store.get_cluster(WS, cid)
    assert failed["state"] == "TERMINATED" and "lacks READ" in failed["state_message"]

    planned = project.run("plan")
    assert planned.returncode == 1
    errors = error_lines(planned)
    assert len(errors) == 1, planned.stderr
    for fact in ("aep-ingest", "aep-explore", SANDBOX_USER, "lacks READ on secret scope aep-dlz", "sas.readers"):
        assert fact in errors[0]
    no_secrets(planned, token(project))

    project.write_config({**project.config, "sas": {**project.config["sas"], "readers": [SANDBOX_USER]}})
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert store.scope_acls(WS, SCOPE) == {SANDBOX_USER: "READ"}
    store.start_cluster(WS, cid)
    deadline = time.monotonic() + 30
    while store.get_cluster(WS, cid)["state"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert access(project) == {"aep-ingest": True, "aep-explore": True}


def test_adopt_refuses_a_cluster_whose_owner_cannot_read_the_scope(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    store = project.store()
    spec = {"cluster_name": "bobs-cluster", "spark_version": "15.4.x-scala2.12", "num_workers": 1}
    cid = store.add_cluster(WS, spec, creator="bob@example.com")
    before = project.config_path.read_text()

    refused = project.run("adopt", "--cluster-id", cid, "--name", "bobs")

    assert refused.returncode == 1
    errors = error_lines(refused)
    assert len(errors) == 1, refused.stderr
    assert "bob@example.com lacks READ on secret scope aep-dlz" in errors[0] and "sas.readers" in errors[0]
    assert project.config_path.read_text() == before  # nothing written

    project.write_config({**project.config, "sas": {**project.config["sas"], "readers": ["bob@example.com"]}})
    adopted = project.run("adopt", "--cluster-id", cid, "--name", "bobs")
    assert adopted.returncode == 0, adopted.stderr
