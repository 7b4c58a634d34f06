"""converge_clusters against the workspace emulator: what a caller's earlier read (`known`) may
save, and what it must not decide on its own."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.clock import FakeClock
from provisioner.config.model import AuthSettings
from provisioner.console import Console
from provisioner.databricks.cluster_state import last_start_ms
from provisioner.databricks.converge import converge_clusters
from provisioner.databricks.converge_report import ConvergeError, ConvergeReport
from provisioner.databricks.identity import connect
from provisioner.databricks.ratelimit import TokenBucket
from provisioner.databricks.workspace import WorkspaceClient
from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY

SPEC = {"spark_version": "15.4.x-scala2.12", "num_workers": 0}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkspaceClient]:
    yield from _client(tmp_path, monkeypatch, start_seconds=0.2)


@pytest.fixture
def slow_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkspaceClient]:
    yield from _client(tmp_path, monkeypatch, start_seconds=1.0)


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_seconds: float) -> Iterator[WorkspaceClient]:
    monkeypatch.setenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", str(start_seconds))
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(tmp_path / "trace.jsonl"))
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        c, _ = connect(WORKSPACE_HOST, sb.workspace_url(WORKSPACE_HOST), AuthSettings(), sb.supplied_credentials)
        yield c


def test_a_known_cluster_that_stopped_meanwhile_is_read_again_not_failed(client: WorkspaceClient) -> None:
    ids = {name: client.create_cluster({**SPEC, "cluster_name": name}) for name in ("a", "b")}
    known = {name: client.wait_for_state(cid, {"RUNNING"}, timeout=10, poll=0.05) for name, cid in ids.items()}
    client.delete_cluster(ids["b"])  # terminated after the caller's read: its restart is refused
    client.wait_for_state(ids["b"], {"TERMINATED"}, timeout=10, poll=0.05)
    out = io.StringIO()

    report = _restart_known(client, ids, known, out)

    assert report.restarted == ["a"] and report.skipped_terminated == ["b"], out.getvalue()
    assert last_start_ms(client.get_cluster(ids["a"])) > last_start_ms(known["a"])
    assert client.get_cluster(ids["b"])["state"] == "TERMINATED"  # not started by a rotation


def test_waits_share_one_listing_of_the_clusters_in_motion(tmp_path: Path, client: WorkspaceClient) -> None:
    """While clusters restart, one `clusters/list` (filtered to states in motion) answers for all
    of them; a cluster is read on its own right after its restart, once it has left that
    listing, or once the listing shows no other cluster in motion (a read costs what a listing
    does then: a few more reads, of one cluster, in the last ~0.2 s of its restart)."""
    ids = {f"c{i}": client.create_cluster({**SPEC, "cluster_name": f"c{i}"}) for i in range(6)}
    known = {name: client.wait_for_state(cid, {"RUNNING"}, timeout=10, poll=0.05) for name, cid in ids.items()}
    trace = tmp_path / "trace.jsonl"
    trace.write_text("")
    out = io.StringIO()

    report = _restart_known(client, ids, known, out)

    assert report.restarted == sorted(ids), out.getvalue()
    calls = [json.loads(line)["path"] for line in trace.read_text().splitlines()]
    gets = [p for p in calls if p.endswith("/clusters/get")]
    listings = [p for p in calls if p.endswith("/clusters/list")]
    assert listings, calls
    assert len(gets) <= 2 * len(ids) + 4, f"{len(gets)} reads of {len(ids)} clusters: polled one by one"


def test_every_restart_is_answered_before_any_read_within_the_call_bound(
    tmp_path: Path, client: WorkspaceClient
) -> None:
    """The first read after a restart must not take the slot a remaining restart needs (with 50
    clusters and 20 slots, restarts issued late lengthen the revocation window), nor must the
    read of the secret's timestamp, which these restarts do not need. Two calls in flight at a
    time; the emulator's journal times each call, and a read that waits for every restart's
    answer starts after the last restart ended there."""
    ids, known = _running(client, 6)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("")
    out = io.StringIO()

    report = _restart_known(client, ids, known, out, max_parallel=2, secret=("dlz", "sas"))

    assert report.restarted == sorted(ids), out.getvalue()
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    restarts = [c for c in calls if c["path"].endswith("/clusters/restart")]
    reads = [c for c in calls if c["path"].endswith(("/clusters/get", "/clusters/list", "/secrets/list"))]
    assert len(restarts) == len(ids) and any(c["path"].endswith("/secrets/list") for c in reads), calls
    order = [c["path"].rsplit("/", 2)[-2:] for c in sorted(calls, key=lambda c: c["start"])]
    assert max(c["end"] for c in restarts) <= min(c["start"] for c in reads), order


@pytest.mark.timeout(120)  # the budget never refills: waits that need a token of it never end
def test_clusters_that_settle_are_confirmed_outside_the_poll_budget(tmp_path: Path, client: WorkspaceClient) -> None:
    """A cluster seen moving and then absent from the listing of clusters in motion has settled;
    the one read that says how is not a poll. With a budget that holds one first look per
    cluster and some listings and then never refills, every wait still ends."""
    ids, known = _running(client, 20)
    listings = 16  # more than the listings of a 0.2 s restart (spaced ≥ 50 ms), fewer than the clusters
    budget = TokenBucket(rate=1e-9, burst=len(ids) + listings)
    out = io.StringIO()

    report = _restart_known(client, ids, known, out, polls=budget)

    assert report.restarted == sorted(ids), out.getvalue()


def test_many_clusters_settling_are_seen_running_in_the_listing_not_read_one_by_one(
    tmp_path: Path, slow_client: WorkspaceClient
) -> None:
    """From `moving.WIDE_FROM` waits the shared listing shows RUNNING clusters too, so a cluster
    that settled needs no read of its own: at 200 clusters under 20 requests/s one read per
    settling cluster plus the listings asked for more than the limit, and the last cluster was
    seen ~2 s after it ran (bench/NOTES.md). On the old code each of the 25 clusters was read
    once it left the listing of clusters in motion: 25 reads or more."""
    ids, known = _running(slow_client, 25)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("")
    out = io.StringIO()

    report = _restart_known(slow_client, ids, known, out, polls=TokenBucket(rate=10, burst=1))

    assert report.restarted == sorted(ids), out.getvalue()
    calls = [json.loads(line)["path"] for line in trace.read_text().splitlines()]
    gets = [p for p in calls if p.endswith("/clusters/get")]
    assert len(gets) <= len(ids) // 2, f"{len(gets)} reads of {len(ids)} clusters"
    lines = out.getvalue().splitlines()
    seen_moving = {line.removeprefix("==> ").split(":")[0] for line in lines if "RESTARTING → RUNNING" in line}
    assert seen_moving == set(ids), out.getvalue()  # every restart still observed, not assumed


def test_a_workspace_where_many_others_run_goes_back_to_reading_settled_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing RUNNING clusters pays for everyone's: when the running list is longer than twice
    the waits, the listings go back to clusters in motion and a settled cluster is read."""
    monkeypatch.setenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", "1.0")
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(tmp_path / "trace.jsonl"))
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        client, _ = connect(WORKSPACE_HOST, sb.workspace_url(WORKSPACE_HOST), AuthSettings(), sb.supplied_credentials)
        for i in range(45):
            sb.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"someone-else-{i}"})
        ids, known = _running(client, 20)
        trace = tmp_path / "trace.jsonl"
        trace.write_text("")
        out = io.StringIO()

        report = _restart_known(client, ids, known, out, polls=TokenBucket(rate=10, burst=1))

    assert report.restarted == sorted(ids), out.getvalue()
    calls = [json.loads(line)["path"] for line in trace.read_text().splitlines()]
    gets = [p for p in calls if p.endswith("/clusters/get")]
    assert len(gets) >= len(ids), f"{len(gets)} reads of {len(ids)} clusters: the wide listing was kept"


def _running(client: WorkspaceClient, n: int) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    ids = {f"c{i:02d}": client.create_cluster({**SPEC, "cluster_name": f"c{i:02d}"}) for i in range(n)}
    return ids, {name: client.wait_for_state(cid, {"RUNNING"}, timeout=10, poll=0.05) for name, cid in ids.items()}


def _restart_known(
    client: WorkspaceClient, ids: dict[str, str], known: dict[str, dict[str, Any]], out: io.StringIO, **options: Any
) -> ConvergeReport:
    """Converge as a rotation's window does: the clusters as read just before, all stale."""
    return converge_clusters(
        client,
        ids,
        Console(out, out, color=False),
        seen_starts={name: last_start_ms(info) for name, info in known.items()},
        known=known,
        timeout=30,
        **options,
    )


def test_first_looks_come_from_the_listing_once_the_poll_budget_is_spent(slow_client: WorkspaceClient) -> None:
    """Many clusters restarted together: only those whose first look finds a token of the poll
    budget free read themselves right after their restart; the others' first look is the next
    shared listing of clusters in motion. So every cluster is seen restarting (a transition
    printed), however many: on the old code each first look was a read of its own, queued on
    the budget, and at 10 reads a second the later clusters of twenty had finished their 1 s
    restart before anyone looked — the restarts issued last were observed last."""
    ids, known = _running(slow_client, 20)
    out = io.StringIO()

    report = _restart_known(slow_client, ids, known, out, polls=TokenBucket(rate=10, burst=1))

    assert report.restarted == sorted(ids), out.getvalue()
    lines = out.getvalue().splitlines()
    seen_moving = {line.removeprefix("==> ").split(":")[0] for line in lines if "RESTARTING → RUNNING" in line}
    assert seen_moving == set(ids), out.getvalue()


@pytest.fixture
def limited_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkspaceClient]:
    """A workspace limited to 10 requests/s, and a client told so (`DATABRICKS_RATE_LIMIT`)."""
    monkeypatch.setenv("PROVISION_SANDBOX_RATE_LIMIT", "10")
    monkeypatch.setenv("DATABRICKS_RATE_LIMIT", "10")
    yield from _client(tmp_path, monkeypatch, start_seconds=0.2)


def test_under_a_stated_rate_limit_restarts_are_spaced_and_never_refused(
    tmp_path: Path, limited_client: WorkspaceClient
) -> None:
    """The user states the workspace's limit as the SDKs read it (as for the provider): 25
    restarts go out 1/10 s apart, none answered 429 — on the old code twenty went at once,
    the workspace refused what passed its burst and the SDK slept a whole-second Retry-After
    plus jitter before each retry — and no read or listing is made before the last restart is
    answered (request journal)."""
    ids, known = _running(limited_client, 25)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("")
    out = io.StringIO()

    report = _restart_known(limited_client, ids, known, out, max_parallel=20)

    assert report.restarted == sorted(ids), out.getvalue()
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [c["path"] for c in calls if c["status"] == 429] == []
    restarts = [c for c in calls if c["path"].endswith("/clusters/restart")]
    reads = [c for c in calls if c["path"].endswith(("/clusters/get", "/clusters/list", "/secrets/list"))]
    assert len(restarts) == 25 and reads
    assert max(c["end"] for c in restarts) <= min(c["start"] for c in reads)


def test_a_restart_slower_than_the_timeout_ends_each_wait_at_the_deadline_on_the_run_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarts that take ten minutes against a 30 s timeout: each cluster is restarted once, its
    progress said every 15 s, and its wait ends as a timeout at the deadline — counted on the
    run's clock, so the test moves time instead of waiting for it (the end-to-end twin is
    tests/lifecycle/test_converge.py::test_timeout_is_honoured_with_progress_per_cluster)."""
    monkeypatch.setenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", "600")
    clock = FakeClock()
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        client, _ = connect(
            WORKSPACE_HOST, sb.workspace_url(WORKSPACE_HOST), AuthSettings(), sb.supplied_credentials, clock
        )
        ids = {name: sb.store.add_cluster(WORKSPACE_KEY, {**SPEC, "cluster_name": name}) for name in ("a", "b")}
        known = {name: client.get_cluster(cid) for name, cid in ids.items()}
        out = io.StringIO()
        began = clock.monotonic()

        with pytest.raises(ConvergeError) as failed:
            _restart_known(client, ids, known, out, clock=clock)

        report = failed.value.report
        assert [(o.name, o.result) for o in report.outcomes] == [("a", "timeout"), ("b", "timeout")], out.getvalue()
        assert str(failed.value).count("after the 30s timeout (--timeout)") == 2
        assert {name: sb.store.restart_calls(WORKSPACE_KEY, cid) for name, cid in ids.items()} == {"a": 1, "b": 1}
        assert all(client.get_cluster(cid)["state"] == "RESTARTING" for cid in ids.values())
        for name in ids:
            assert re.search(rf"^==> {name}: still RESTARTING \(\d+s of 30s\)$", out.getvalue(), re.M), out.getvalue()
        assert clock.monotonic() - began >= 30
