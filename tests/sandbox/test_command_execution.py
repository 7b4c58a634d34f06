"""The workspace emulator's Command Execution API 1.2, on the wire and through databricks-sdk.

Shapes from databricks-sdk-py `databricks/sdk/service/compute.py` (CommandExecutionAPI). Commands
run as Python with the cluster's *effective* Spark config; the DLZ probe is one such program, and
its `dbutils.fs.ls` lists the container on whichever DLZ backend the sandbox has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.reach.probe import FAILED, NOT_RUNNING, REACHED, SKIPPED, probe_clusters, probe_program
from provisioner.sandbox import Sandbox
from tests.helpers.config import CLIENT_ID, WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import EMULATOR_ORG_ID, Workspace


@pytest.fixture
def sandbox(tmp_path: Path, dlz_backend: str) -> Iterator[Sandbox]:
    with Sandbox(
        tmp_path / "sandbox",
        workspace_hosts=[WORKSPACE_HOST],
        client_id=CLIENT_ID,
        org_id=EMULATOR_ORG_ID,
        dlz_backend=dlz_backend,
    ) as sb:
        yield sb


def sdk_client(sb: Sandbox) -> Any:
    from databricks.sdk import WorkspaceClient as SdkWorkspaceClient

    assert sb.databricks_token is not None
    return SdkWorkspaceClient(
        host=sb.workspace_url(WORKSPACE_HOST), token=sb.databricks_token.reveal(), auth_type="pat"
    )


def running_cluster(sb: Sandbox, token: str | None) -> tuple[str, str, str]:
    body = sb.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    account, container = body["storageAccountName"], body["containerName"]
    conf = {} if token is None else {f"fs.azure.sas.{container}.{account}.blob.core.windows.net": token}
    return sb.store.add_cluster(WORKSPACE_KEY, {"spark_conf": conf}), account, container


def test_wire_shapes_of_a_probe(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    token = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")["SASToken"]
    cluster, account, container = running_cluster(sandbox, token)
    # The backend on its own first (Azurite's start takes longer than the helper's 5 s timeout).
    assert sandbox.dlz.probe(account, container, token) is None
    created = ws.post("contexts/create", {"clusterId": cluster, "language": "python"}, version="1.2")
    assert created.status_code == 200, created.text
    context = created.json()["id"]
    status = ws.get("contexts/status", version="1.2", clusterId=cluster, contextId=context).json()
    assert status == {"id": context, "status": "Running"}
    body = {
        "clusterId": cluster,
        "contextId": context,
        "language": "python",
        "command": probe_program(account, container),
    }
    command = ws.post("commands/execute", body, version="1.2").json()["id"]
    done = ws.get("commands/status", version="1.2", clusterId=cluster, contextId=context, commandId=command).json()
    assert done["id"] == command and done["status"] == "Finished"
    assert done["results"]["resultType"] == "text"
    assert done["results"]["data"] == 'DLZ_PROBE {"ok": true}'
    destroyed = ws.post("contexts/destroy", {"clusterId": cluster, "contextId": context}, version="1.2")
    assert destroyed.json() == {"id": context}
    assert sandbox.store.open_contexts(WORKSPACE_KEY) == []


def _execute(ws: Workspace, cluster: str, command: str) -> dict[str, Any]:
    context = ws.post("contexts/create", {"clusterId": cluster, "language": "python"}, version="1.2").json()["id"]
    body = {"clusterId": cluster, "contextId": context, "language": "python", "command": command}
    command_id = ws.post("commands/execute", body, version="1.2").json()["id"]
    done = ws.get("commands/status", version="1.2", clusterId=cluster, contextId=context, commandId=command_id)
    ws.post("contexts/destroy", {"clusterId": cluster, "contextId": context}, version="1.2")
    return dict(done.json()["results"])


def test_commands_run_as_python_on_the_cluster(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    token = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")["SASToken"]
    cluster, account, container = running_cluster(sandbox, token)
    assert sandbox.dlz.probe(account, container, token) is None  # Azurite started (slower than the 5 s timeout)
    assert _execute(ws, cluster, "print(1)") == {"resultType": "text", "data": "1"}
    key = f"fs.azure.sas.{container}.{account}.blob.core.windows.net"
    assert _execute(ws, cluster, f"print(spark.conf.get({key!r}) == {token!r})")["data"] == "True"
    missing = _execute(ws, cluster, "spark.conf.get('spark.nothing.here')")
    assert missing["resultType"] == "error" and "java.util.NoSuchElementException" in missing["summary"]
    listed = _execute(ws, cluster, f"print(dbutils.fs.ls('wasbs://{container}@{account}.blob.core.windows.net/'))")
    assert listed == {"resultType": "text", "data": "[]"}
    failed = _execute(ws, cluster, "1/0")
    assert failed["resultType"] == "error"
    assert failed["summary"] == "<span class='ansi-red-fg'>ZeroDivisionError</span>: division by zero"


def test_a_text_naming_the_probe_is_not_taken_for_it(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    cluster, account, container = running_cluster(sandbox, None)
    fake = f"# DLZ_PROBE wasbs://{container}@{account}.blob.core.windows.net/\nprint('DLZ_PROBE ' + 'not a probe')"
    assert _execute(ws, cluster, fake) == {"resultType": "text", "data": "DLZ_PROBE not a probe"}
    # The real probe, with no SAS in the cluster's config: the WASB driver's words.
    probed = _execute(ws, cluster, probe_program(account, container))["data"]
    assert probed.startswith('DLZ_PROBE {"ok": false') and "no credentials found for them" in probed


def test_access_modes(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    token = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")["SASToken"]
    body = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    account, container = body["storageAccountName"], body["containerName"]
    conf = {f"fs.azure.sas.{container}.{account}.blob.core.windows.net": token}
    assert sandbox.dlz.probe(account, container, token) is None
    someone_else = sandbox.store.add_cluster(
        WORKSPACE_KEY,
        {"spark_conf": conf, "data_security_mode": "SINGLE_USER", "single_user_name": "other@example.com"},
    )
    refused = _execute(ws, someone_else, "print(1)")
    assert refused["resultType"] == "error" and "Single-user check failed" in refused["summary"]
    standard = sandbox.store.add_cluster(WORKSPACE_KEY, {"spark_conf": conf, "data_security_mode": "USER_ISOLATION"})
    assert _execute(ws, standard, "print(1)")["data"] == "1"
    probed = _execute(ws, standard, probe_program(account, container))["data"]
    assert probed.startswith('DLZ_PROBE {"ok": false') and "SecurityException" in probed


def test_missing_fields_answer_as_api_1_2(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    answer = ws.post("commands/execute", {"clusterId": "x", "language": "python", "command": "1"}, version="1.2")
    assert answer.status_code == 400
    assert answer.json() == {"error": "requirement failed: missing contextId"}


def test_contexts_need_a_running_cluster_and_die_with_its_driver(sandbox: Sandbox, http: requests.Session) -> None:
    ws = Workspace(sandbox, http)
    cluster, _, _ = running_cluster(sandbox, None)
    context = ws.post("contexts/create", {"clusterId": cluster, "language": "python"}, version="1.2").json()["id"]
    sandbox.store.restart_cluster(WORKSPACE_KEY, cluster)
    status = ws.get("contexts/status", version="1.2", clusterId=cluster, contextId=context).json()
    assert status["status"] == "Error"
    refused = ws.post("contexts/create", {"clusterId": cluster, "language": "python"}, version="1.2")
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_STATE"
    unknown = ws.get("contexts/status", version="1.2", clusterId=cluster, contextId="42")
    assert unknown.status_code == 400


def test_probe_through_the_sdk_uses_the_effective_spark_config(sandbox: Sandbox) -> None:
    old = sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod")["SASToken"]
    good, account, container = running_cluster(sandbox, old)
    bare, _, _ = running_cluster(sandbox, None)
    stopped, _, _ = running_cluster(sandbox, old)
    sandbox.store.delete_cluster(WORKSPACE_KEY, stopped)
    sdk = sdk_client(sandbox)
    pairs = [("good", good), ("bare", bare), ("stopped", stopped), ("new", None)]
    results = {p.name: p for p in probe_clusters(sdk, pairs, account, container, timeout=60)}
    assert results["good"].outcome == REACHED, results["good"]
    assert results["bare"].outcome == FAILED
    assert "no credentials found for them in the configuration" in results["bare"].detail
    assert results["stopped"].outcome == SKIPPED and results["stopped"].detail == NOT_RUNNING
    seen = sandbox.store.get_cluster(WORKSPACE_KEY, stopped)
    assert seen is not None and seen["state"] in ("TERMINATING", "TERMINATED")  # not started
    assert results["new"].outcome == SKIPPED

    sandbox.store.refresh_dlz(EMULATOR_ORG_ID, "prod")  # the running cluster keeps the revoked token
    (revoked,) = probe_clusters(sdk, [("good", good)], account, container, timeout=60)
    assert revoked.outcome == FAILED
    assert revoked.detail.startswith("shaded.databricks.org.apache.hadoop.fs.azure.AzureException: ")
    assert "Server failed to authenticate the request" in revoked.detail
    assert sandbox.store.open_contexts(WORKSPACE_KEY) == []
    assert old not in json.dumps(revoked.as_json())


def test_ci_never_skips_the_azurite_tests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.helpers.sandbox import require_azurite

    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no azurite-blob
    monkeypatch.delenv("PROVISION_AZURITE", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must test the DLZ on Azure Blob semantics"):
        require_azurite()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="needs Azurite"):
        require_azurite()


def test_azurite_is_found_where_ci_installs_it(tmp_path: Path) -> None:
    """README's test command finds the Azurite `.ci/run` installed once per machine, not on PATH."""
    from provisioner.sandbox.azurite import find_azurite, install_dir

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("node", "azurite-blob"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    installed = install_dir({"HOME": str(tmp_path / "home")}) / "node_modules" / ".bin" / "azurite-blob"
    installed.parent.mkdir(parents=True)
    installed.write_text("#!/bin/sh\n")
    installed.chmod(0o755)
    only_node = str(tmp_path / "node-only")
    Path(only_node).mkdir()
    (Path(only_node) / "node").symlink_to(bin_dir / "node")

    assert find_azurite({"PATH": only_node, "HOME": str(tmp_path / "home")}) == installed
    assert find_azurite({"PATH": only_node, "HOME": str(tmp_path / "elsewhere")}) is None
    assert find_azurite({"PATH": only_node, "HOME": str(tmp_path / "home"), "PROVISION_AZURITE": "off"}) is None
    assert find_azurite({"PATH": str(bin_dir), "HOME": str(tmp_path / "home")}) == bin_dir / "azurite-blob"
    assert install_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/dlz-provisioner/azurite-3.37.0")
