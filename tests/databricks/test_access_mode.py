"""The access-mode rule (provisioner/databricks/access_mode.py) and the workspace emulator's own copy
of it (provisioner/sandbox/command_execution.py) agree: what the rule says will fail before any
command runs is exactly what fails when the probe does run there (issue 22, item 4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.config.model import AuthSettings
from provisioner.databricks.access_mode import NO_SAS, NOT_FOR_RUN, UNSURE, judge
from provisioner.databricks.identity import Identity, connect
from provisioner.reach.probe import ERROR, FAILED, REACHED, probe_clusters
from provisioner.sandbox import Sandbox
from provisioner.sandbox.store import SANDBOX_USER
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY

HOST, WS = WORKSPACE_HOST, WORKSPACE_KEY
ORG = "ACCESS0000000000000000@AdobeOrg"
ME = Identity(HOST, "pat", "ci@example.com", "CI", groups=("data-eng", "users"))


@pytest.mark.parametrize(
    ("mode", "assigned", "kind"),
    [
        (None, None, None),
        ("NONE", None, None),
        ("NO_ISOLATION", None, None),
        ("SINGLE_USER", "ci@example.com", None),
        ("DATA_SECURITY_MODE_DEDICATED", "data-eng", None),  # a group the run is a direct member of
        ("SINGLE_USER", "users", None),  # every workspace user, which SCIM Me does not list
        ("SINGLE_USER", "ana@example.com", NOT_FOR_RUN),
        ("DATA_SECURITY_MODE_DEDICATED", "ml-team", NOT_FOR_RUN),
        ("USER_ISOLATION", None, NO_SAS),
        ("DATA_SECURITY_MODE_STANDARD", None, NO_SAS),
        ("DATA_SECURITY_MODE_AUTO", None, UNSURE),
        ("LEGACY_TABLE_ACL", None, UNSURE),
        ("LEGACY_SINGLE_USER", "ana@example.com", UNSURE),
    ],
)
def test_each_mode_for_the_run(mode: str | None, assigned: str | None, kind: str | None) -> None:
    found = judge(mode, assigned, ME)
    assert (found.kind if found else None) == kind
    if found is not None and found.kind == NOT_FOR_RUN:
        assert f"to {assigned}," in found.reason and "ci@example.com (CI)" in found.reason and found.blocks_probe


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(tmp_path / "trace.jsonl"))
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[HOST], org_id=ORG) as sb:
        yield sb


def _blocks(spec: dict[str, str], identity: Identity) -> bool:
    found = judge(spec.get("data_security_mode"), spec.get("single_user_name"), identity)
    return found is not None and found.blocks_probe


def _contexts_created(trace: Path) -> int:
    lines = trace.read_text().splitlines() if trace.exists() else []
    return sum(json.loads(line)["path"].endswith("/contexts/create") for line in lines)


def test_the_emulator_fails_where_the_rule_says_and_nowhere_else(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.add_group_member("data-eng", SANDBOX_USER)
    sandbox.store.add_group_member("ml-team", "ana@example.com")
    workspace, identity = connect(HOST, sandbox.workspace_url(HOST), AuthSettings(), sandbox.supplied_credentials)
    assert identity.user_name == SANDBOX_USER
    creds = sandbox.store.dlz_credentials(ORG, "prod")
    account, container = creds["storageAccountName"], creds["containerName"]
    conf = {f"fs.azure.sas.{container}.{account}.blob.core.windows.net": creds["SASToken"]}
    specs: dict[str, dict[str, str]] = {
        "plain": {},
        "mine": {"data_security_mode": "SINGLE_USER", "single_user_name": SANDBOX_USER},
        "anas": {"data_security_mode": "SINGLE_USER", "single_user_name": "ana@example.com"},
        "anas-new": {"data_security_mode": "DATA_SECURITY_MODE_DEDICATED", "single_user_name": "ana@example.com"},
        "teams": {"data_security_mode": "DATA_SECURITY_MODE_DEDICATED", "single_user_name": "data-eng"},
        "anas-team": {"data_security_mode": "DATA_SECURITY_MODE_DEDICATED", "single_user_name": "ml-team"},
        "everyones": {"data_security_mode": "SINGLE_USER", "single_user_name": "users"},
        "shared": {"data_security_mode": "USER_ISOLATION"},
        "standard": {"data_security_mode": "DATA_SECURITY_MODE_STANDARD"},
        "auto": {"data_security_mode": "DATA_SECURITY_MODE_AUTO"},
    }
    ids = {name: sandbox.store.add_cluster(WS, {**spec, "spark_conf": conf}) for name, spec in specs.items()}
    pairs = list(ids.items())

    # The probe run for real everywhere (no pre-check): what the emulator does.
    raw = {p.name: p for p in probe_clusters(workspace.sdk, pairs, account, container, timeout=60)}
    trace = tmp_path / "trace.jsonl"
    assert _contexts_created(trace) == len(pairs)
    # With the pre-check: what the product predicts, from the live clusters.
    before = _contexts_created(trace)
    judged = {
        p.name: p for p in probe_clusters(workspace.sdk, pairs, account, container, timeout=60, identity=identity)
    }

    for name, spec in specs.items():
        found = judge(spec.get("data_security_mode"), spec.get("single_user_name"), identity)
        if found is None:
            assert raw[name].outcome == judged[name].outcome == REACHED, (name, raw[name])
        elif found.kind == NOT_FOR_RUN:
            assert raw[name].outcome == ERROR and "Single-user check failed" in raw[name].detail, raw[name]
            assert judged[name].outcome == ERROR and judged[name].detail.startswith("not probed: dedicated")
        elif found.kind == NO_SAS:
            assert raw[name].outcome == FAILED and "external location" in raw[name].detail, raw[name]
            assert judged[name].outcome == FAILED and "external locations" in judged[name].detail
        else:  # AUTO: the workspace chose; the probe runs and its failure says what AUTO may mean
            assert raw[name].outcome == judged[name].outcome == FAILED, raw[name]
            assert "lets Databricks choose" in judged[name].detail
    probed = [n for n, s in specs.items() if not _blocks(s, identity)]
    assert probed == ["plain", "mine", "teams", "everyones", "auto"]
    assert _contexts_created(trace) - before == len(probed)
    assert sandbox.store.open_contexts(WS) == []
