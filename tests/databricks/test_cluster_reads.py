"""read_clusters against the workspace emulator: past one wave of gets, the unpinned
clusters come from their listing, 100 a page, beside the pinned list (request journal)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from provisioner.config.model import AuthSettings
from provisioner.databricks import cluster_reads
from provisioner.databricks.cluster_reads import read_clusters
from provisioner.databricks.identity import connect
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
from provisioner.sandbox import Sandbox
from tests.helpers.config import WORKSPACE_HOST

SPEC = {"spark_version": "15.4.x-scala2.12", "num_workers": 0}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkspaceClient]:
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(tmp_path / "trace.jsonl"))
    with Sandbox(tmp_path / "sandbox", workspace_hosts=[WORKSPACE_HOST]) as sb:
        c, _ = connect(WORKSPACE_HOST, sb.workspace_url(WORKSPACE_HOST), AuthSettings(), sb.supplied_credentials)
        yield c


def _env(names: dict[str, str], unpinned: set[str], max_parallel: int) -> Any:
    clusters = [SimpleNamespace(name=n, is_pinned=False if n in unpinned else None) for n in names]
    return cast(Any, SimpleNamespace(databricks_max_parallel=max_parallel, clusters=clusters))


def _calls(trace: Path) -> list[str]:
    return [json.loads(line)["path"].rsplit("/api/", 1)[-1] for line in trace.read_text().splitlines()]


def _make(client: WorkspaceClient, prefix: str, count: int, *, pin: bool = False) -> dict[str, str]:
    ids = {
        f"{prefix}{i:02d}": client.create_cluster({**SPEC, "cluster_name": f"{prefix}{i:02d}"}) for i in range(count)
    }
    for cid in ids.values() if pin else ():
        client.pin_cluster(cid)
    return ids


def test_more_unpinned_clusters_than_one_wave_come_from_their_listing(tmp_path: Path, client: WorkspaceClient) -> None:
    """12 unpinned clusters at 4 calls in flight were 3 waves of gets; now the pinned list and
    one page of the unpinned listing, side by side, and no get at all."""
    pinned = _make(client, "p", 3, pin=True)
    loose = _make(client, "u", 12)
    ids = {**pinned, **loose}
    (tmp_path / "trace.jsonl").write_text("")

    reads = read_clusters(client, _env(ids, set(loose), max_parallel=4), ids)

    calls = _calls(tmp_path / "trace.jsonl")
    assert [c for c in calls if c.endswith("clusters/get")] == [], calls
    assert len([c for c in calls if c.endswith("clusters/list")]) == 2, calls
    assert reads.pinned == frozenset(pinned.values())
    for name, cid in ids.items():
        info = reads.clusters[cid]
        assert isinstance(info, dict) and info["cluster_name"] == name


def test_one_wave_of_unpinned_clusters_is_still_read_with_gets(tmp_path: Path, client: WorkspaceClient) -> None:
    """Within one wave a get each is as fast as a listing and reads nothing else of the workspace."""
    loose = _make(client, "u", 3)
    _make(client, "other", 5)  # not ours: never listed for this read
    (tmp_path / "trace.jsonl").write_text("")

    reads = read_clusters(client, _env(loose, set(loose), max_parallel=4), loose)

    calls = _calls(tmp_path / "trace.jsonl")
    assert sorted(c for c in calls if c.endswith("clusters/list")) == ["2.1/clusters/list"], calls
    assert len([c for c in calls if c.endswith("clusters/get")]) == 3
    assert all(isinstance(reads.clusters[cid], dict) for cid in loose.values())


def test_the_listing_stops_at_as_many_pages_as_gets_would_take_waves(
    tmp_path: Path, client: WorkspaceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other people's unpinned clusters fill the listing: after ⌈ours / parallel⌉ pages it stops
    and what it did not show is read with gets; a deleted cluster is reported as its get says."""
    monkeypatch.setattr(cluster_reads, "LIST_PAGE_SIZE", 2)
    others = _make(client, "other", 4)
    loose = _make(client, "u", 6)
    gone = loose.pop("u05")
    client.permanent_delete_cluster(gone)
    ids = {**loose, "u05": gone}
    (tmp_path / "trace.jsonl").write_text("")

    reads = read_clusters(client, _env(ids, set(ids), max_parallel=2), ids)

    calls = _calls(tmp_path / "trace.jsonl")
    # the pinned list + ⌈6/2⌉ pages of 2 (the emulator lists in id order); the rest one get each
    shown = set(sorted([*others.values(), *loose.values()])[:6]) & set(loose.values())
    assert len([c for c in calls if c.endswith("clusters/list")]) == 1 + 3, calls
    assert len([c for c in calls if c.endswith("clusters/get")]) == len(ids) - len(shown), calls
    for name, cid in loose.items():
        info = reads.clusters[cid]
        assert isinstance(info, dict) and info["cluster_name"] == name
    missing = reads.clusters[gone]
    assert isinstance(missing, WorkspaceError) and missing.not_found


def test_the_emulator_lists_pinned_or_unpinned_clusters_as_asked(client: WorkspaceClient) -> None:
    from databricks.sdk.service.compute import ListClustersFilterBy

    pinned, loose = _make(client, "p", 2, pin=True), _make(client, "u", 3)

    def listed(is_pinned: bool | None) -> set[str]:
        by = None if is_pinned is None else ListClustersFilterBy(is_pinned=is_pinned)
        return {str(c.cluster_id) for c in client.sdk.clusters.list(filter_by=by, page_size=100)}

    assert listed(True) == set(pinned.values())
    assert listed(False) == set(loose.values())
    assert listed(None) == set(pinned.values()) | set(loose.values())
