"""The stand-in provider throttles itself like the real one (15 requests/s by default)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.databricks.parallel import map_bounded, values_or_raise
from provisioner.sandbox import Sandbox
from provisioner.sandbox.provider.auth import workspace_client
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import sandbox_pat


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("PROVISION_SANDBOX_RATE_LIMIT", "6")
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        monkeypatch.setenv("PROVISION_SANDBOX_HOSTS", json.dumps(sb.hosts()))
        monkeypatch.setenv("DATABRICKS_TOKEN", sandbox_pat(sb))
        yield sb


def test_the_provider_stays_under_a_limit_it_knows(limited: Sandbox) -> None:
    ids = [limited.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(16)]
    # rate_limit 5 < the workspace's 6: as the real provider with its default 15 under a
    # workspace allowing more, not one request is refused although 10 threads ask at once.
    client = workspace_client({"host": WORKSPACE_HOST, "rate_limit": 5})
    infos = values_or_raise(map_bounded(client.get_cluster, ids, max_parallel=10), str, "read")
    assert [i["cluster_id"] for i in infos] == ids
    assert limited.workspace.throttled == 0


def test_without_its_throttle_the_same_burst_is_refused(limited: Sandbox) -> None:
    ids = [limited.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(16)]
    client = workspace_client({"host": WORKSPACE_HOST, "rate_limit": 1000})
    values_or_raise(map_bounded(client.get_cluster, ids, max_parallel=10), str, "read")
    assert limited.workspace.throttled > 0  # the SDK retried them (Retry-After), the limit is real
