"""Sandbox profiles, the workspace rate limit (429 + Retry-After) and the request journal.

No timing assertions: what is checked is which profile applies, that a throttled workspace
answers the way Databricks does, that a client honouring Retry-After still gets every
answer, and that the journal records requests without anything secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provisioner.databricks.parallel import map_bounded, values_or_raise
from provisioner.errors import ProvisionError
from provisioner.sandbox import Sandbox
from provisioner.sandbox.profile import FAST, REALISTIC, current_profile
from provisioner.sandbox.store import SandboxStore
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import sandbox_pat, sandbox_workspace


def test_fast_is_the_default_and_realistic_has_real_world_proportions() -> None:
    assert current_profile({}) == FAST
    real = current_profile({"PROVISION_SANDBOX_PROFILE": "realistic"})
    assert real == REALISTIC
    assert real.workspace_latency == (0.1, 0.3) and real.aep_latency == (0.2, 0.5)
    # Restarts are scaled down far less than calls are fast: a restart is ~100 calls long.
    assert real.cluster_start_seconds / real.workspace_latency[1] >= 50
    assert real.rate_limit_rps is None


def test_overrides_and_bad_values() -> None:
    env = {
        "PROVISION_SANDBOX_PROFILE": "realistic",
        "PROVISION_SANDBOX_CLUSTER_START_SECONDS": "2.5",
        "PROVISION_SANDBOX_RATE_LIMIT": "15",
    }
    profile = current_profile(env)
    assert (profile.cluster_start_seconds, profile.cluster_start_jitter, profile.rate_limit_rps) == (2.5, 0.0, 15.0)
    assert current_profile({"PROVISION_SANDBOX_RATE_LIMIT": "0"}).rate_limit_rps is None
    with pytest.raises(ProvisionError, match="PROVISION_SANDBOX_PROFILE='slow' is not a sandbox profile"):
        current_profile({"PROVISION_SANDBOX_PROFILE": "slow"})
    with pytest.raises(ProvisionError, match="PROVISION_SANDBOX_RATE_LIMIT='fast'"):
        current_profile({"PROVISION_SANDBOX_RATE_LIMIT": "fast"})


def test_realistic_restarts_vary_around_the_profile_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", raising=False)
    monkeypatch.setenv("PROVISION_SANDBOX_PROFILE", "realistic")
    store = SandboxStore(tmp_path)
    durations = {store.start_duration() for _ in range(50)}
    assert all(18.0 <= d <= 22.0 for d in durations) and len(durations) > 1
    cid = store.add_cluster(WORKSPACE_KEY)
    store.restart_cluster(WORKSPACE_KEY, cid)
    began = store.snapshot()["workspaces"][WORKSPACE_KEY]["clusters"][cid]["last_start"]
    assert 18.0 <= began["seconds"] <= 22.0
    assert store.get_cluster(WORKSPACE_KEY, cid)["state"] == "RESTARTING"  # type: ignore[index]
    assert "last_start" not in store.get_cluster(WORKSPACE_KEY, cid)  # type: ignore[operator]  # not an API field


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("PROVISION_SANDBOX_RATE_LIMIT", "4")
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(tmp_path / "trace.jsonl"))
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


def test_a_rate_limited_workspace_answers_429_with_an_integer_retry_after(limited: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {sandbox_pat(limited)}"}
    url = f"{limited.workspace_url(WORKSPACE_HOST)}/api/2.1/clusters/list"
    with requests.Session() as http:
        answers = [http.get(url, headers=headers, timeout=5) for _ in range(12)]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and answers[0].status_code == 200
    for answer in throttled:
        assert answer.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert int(answer.headers["Retry-After"]) >= 1
    assert limited.workspace.throttled == len(throttled)


def test_parallel_reads_under_a_rate_limit_all_succeed_in_order(limited: Sandbox, tmp_path: Path) -> None:
    ids = [limited.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(10)]
    with sandbox_workspace(limited, WORKSPACE_HOST) as client:
        infos = values_or_raise(map_bounded(client.get_cluster, ids, max_parallel=10), str, "read clusters")
    assert [i["cluster_id"] for i in infos] == ids
    assert limited.workspace.throttled > 0  # the limit did bite, and Retry-After was honoured
    journal = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    gets = [j for j in journal if j["path"].endswith("/clusters/get")]
    assert len(gets) == 10 + limited.workspace.throttled
    assert sorted(j["status"] for j in gets) == [200] * 10 + [429] * limited.workspace.throttled
    text = (tmp_path / "trace.jsonl").read_text()
    assert sandbox_pat(limited) not in text and "cluster_id=" not in text


def test_a_latency_seed_gives_each_client_the_same_waits_whatever_else_is_called() -> None:
    """Common random numbers for benchmark pairs: with one seed the provider's requests wait
    the same in a run where the tool also calls the workspace and in one where it does not."""
    from provisioner.sandbox.server import SandboxServer
    from provisioner.sandbox.wire import Request

    def request(client: str, path: str) -> Request:
        return Request("GET", path, {}, {"user-agent": f"{client}/1.0 databricks-sdk-py/0.x"})

    provider = [request("databricks-tf-provider", p) for p in ("/ws/a/get", "/ws/a/list", "/ws/a/get")]
    tool = [request("dlz-provisioner", p) for p in ("/ws/a/get", "/ws/a/list")]
    server = SandboxServer({}, latency={"/ws/": (0.1, 0.3)})
    try:
        waits = []
        for calls in (provider, [tool[0], provider[0], tool[1], provider[1], provider[2]]):
            server.seed_latency("pair-1")
            drawn = [server._httpd.delay("/ws/", r) for r in calls]
            waits.append([w for r, w in zip(calls, drawn, strict=True) if r in provider])
        assert waits[0] == waits[1]
        assert all(0.1 <= w <= 0.3 for w in waits[0])
        assert waits[0][0] != waits[0][2]  # the second time the same request is made, another draw
        probe = Request(
            "GET", "/ws/a/.well-known/databricks-config", {}, {"user-agent": "unknown/0.0.0 databricks-sdk-py/0.x"}
        )
        assert len({server._httpd.delay("/ws/", probe) for _ in range(3)}) == 1  # whoever sent it
        server.seed_latency("pair-2")
        assert [server._httpd.delay("/ws/", r) for r in provider] != waits[0]
        server.seed_latency(None)  # at random again
        assert len({server._httpd.delay("/ws/", provider[0]) for _ in range(5)}) > 1
    finally:
        server.stop()
