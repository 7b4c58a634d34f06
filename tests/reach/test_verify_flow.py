"""End to end on the sandbox with the real terraform: every running cluster proves it can list
the DLZ through the Command Execution API; a refresh outside the tool breaks that (the storage
service's error, `verify` exits 4) and `rotate` mends it — on Azurite (Azure Blob semantics)
in both SAS modes, and once on the built-in oracle."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_KEY
from tests.helpers.project import Project
from tests.helpers.sandbox import use_azurite

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

ORG, SANDBOX = BASE_CONFIG["aep"]["org_id"], BASE_CONFIG["aep"]["sandbox"]
AUTH_FAILED = "Server failed to authenticate the request"


def secrets_of(project: Project) -> list[str]:
    snapshot = project.store().snapshot()
    tokens = [r["SASToken"] for r in snapshot["dlz"].values()]
    sigs = [re.search(r"sig=([^&]+)", t).group(1) for t in tokens]  # type: ignore[union-attr]
    keys = list(snapshot.get("dlz_accounts", {}).values())
    return [AEP_SECRET, DATABRICKS_PAT, *tokens, *sigs, *(unquote(s) for s in sigs), *keys]


@pytest.mark.parametrize(
    ("mode", "backend"), [("secret_scope", "azurite"), ("inline", "azurite"), ("secret_scope", "oracle")]
)
def test_apply_refresh_rotate_proven_on_every_cluster(project: Project, mode: str, backend: str) -> None:
    if backend == "azurite":
        use_azurite(project)
    project.config["sas"]["mode"] = mode
    project.write_config()
    outputs: list[str] = []

    def run(*args: str) -> str:
        done = project.run(*args)
        text = done.stdout + done.stderr
        outputs.append(text)
        assert "Traceback" not in text, text[-3000:]
        return str(done.returncode) + "\n" + text

    applied = run("apply", "--auto-approve")
    assert applied.startswith("0\n"), applied[-3000:]
    assert "default: 2/2 running clusters reach the DLZ" in applied
    assert f"the Data Landing Zone is {'Azurite' if backend == 'azurite' else 'the built-in DLZ oracle'}" in applied

    done = project.run("verify", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["dlz"]["backend"] == backend
    assert doc["host"]["ok"] is True
    assert [c["outcome"] for c in doc["clusters"]] == ["reached", "reached"]
    assert doc["runningClusters"] == doc["reachingClusters"] == 2
    assert project.store().open_contexts(WORKSPACE_KEY) == []  # every probe destroyed its context

    # Someone refreshes the token outside the tool: AEP revokes the one the clusters run with.
    refreshed = project.run("sandbox", "refresh", sandbox=False)
    assert refreshed.returncode == 0, refreshed.stderr
    broken = run("verify")
    assert broken.startswith("4\n"), broken[-3000:]
    assert "from this host: ok" in broken  # AEP's current token is fine ...
    assert broken.count(AUTH_FAILED) == 2  # ... the clusters' one is not, and each says so
    assert "AzureException" in broken and "StorageException" in broken
    assert "0/2 running clusters reach the DLZ" in broken

    done = project.run("status", "--probe", "--json")
    assert done.returncode == 4, done.stdout + done.stderr
    status = json.loads(done.stdout)
    assert status["dlz"] == {"backend": backend, "probed": True}
    assert [c["dlzAccess"] for c in status["clusters"]] == [False, False]
    assert all(AUTH_FAILED in c["dlzProbe"]["detail"] for c in status["clusters"])

    rotated = run("rotate", "--auto-approve")
    assert rotated.startswith("0\n"), rotated[-3000:]
    assert "default: 2/2 running clusters reach the DLZ" in rotated
    healed = run("verify")
    assert healed.startswith("0\n"), healed[-3000:]
    assert project.store().open_contexts(WORKSPACE_KEY) == []

    for secret in secrets_of(project):
        for text in outputs:
            assert secret not in text


def test_a_terminated_cluster_is_not_started_for_a_probe(project: Project) -> None:
    assert project.run("apply", "--auto-approve", "--no-verify").returncode == 0
    store = project.store()
    (ingest,) = [c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY) if c["cluster_name"] == "aep-ingest"]
    store.delete_cluster(WORKSPACE_KEY, ingest)  # "terminate": the config stays, the cluster stops
    done = project.run("verify", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    by_name = {c["name"]: c for c in json.loads(done.stdout)["clusters"]}
    assert by_name["aep-ingest"]["outcome"] == "not_running"
    assert by_name["aep-ingest"]["detail"] == "not running: will use the current token at its next start"
    assert by_name["aep-explore"]["outcome"] == "reached"
    assert store.get_cluster(WORKSPACE_KEY, ingest)["state"] in ("TERMINATING", "TERMINATED")  # not started
    human = project.run("verify")
    assert "1/1 running clusters reach the DLZ" in human.stdout
