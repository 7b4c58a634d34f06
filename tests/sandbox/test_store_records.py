"""The store's rows (provisioner/sandbox/store/records.py): one per cluster, read and written
only when a transaction touches them; a crash inside a commit leaves the state before it; an
earlier version's `state.json` is imported once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provisioner.sandbox.store import DatabricksError, SandboxStore
from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.sandbox import EMULATOR_ORG_ID

ROOT = Path(__file__).resolve().parents[2]


def _cluster_statements(store: SandboxStore) -> list[str]:
    """Every SQL statement the store runs from now on that names a cluster row (expanded)."""
    seen: list[str] = []
    conn = store._db._connect()
    conn.set_trace_callback(lambda sql: seen.append(sql) if "clusters" in sql else None)
    return seen


def test_a_request_on_one_cluster_reads_and_writes_only_that_cluster(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    ids = [store.add_cluster(WORKSPACE_KEY) for _ in range(30)]
    seen = _cluster_statements(store)
    store.restart_cluster(WORKSPACE_KEY, ids[7])
    assert store.get_cluster(WORKSPACE_KEY, ids[9])["state"] == "RUNNING"  # type: ignore[index]
    named = {cid for cid in ids if any(cid in sql for sql in seen)}
    assert named == {ids[7], ids[9]}
    writes = [sql for sql in seen if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1 and ids[7] in writes[0]
    # and nothing reads the whole table (a listing of ids or bodies) for either request
    assert not [sql for sql in seen if "SELECT id" in sql and "wake" not in sql], seen


def test_the_clock_finds_due_clusters_without_reading_the_others(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path, cluster_start_seconds=0.0)
    ids = [store.add_cluster(WORKSPACE_KEY) for _ in range(10)]
    store.restart_cluster(WORKSPACE_KEY, ids[3])  # due at once (0 s restart), applied on the next load
    seen = _cluster_statements(store)
    assert store.get_cluster(WORKSPACE_KEY, ids[5])["state"] == "RUNNING"  # type: ignore[index]
    assert {cid for cid in ids if any(cid in sql for sql in seen)} == {ids[3], ids[5]}
    assert [e["type"] for e in store.cluster_events(WORKSPACE_KEY, ids[3], newest_first=False)][-2:] == [
        "RESTARTING",
        "RUNNING",
    ]


def test_clusters_list_in_id_order_as_the_json_document_did(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    for cid in ("0101-000000-bbbbbbbb", "0101-000000-aaaaaaaa", "0101-000000-cccccccc"):
        store.add_cluster(WORKSPACE_KEY, cluster_id=cid)
    store.restart_cluster(WORKSPACE_KEY, "0101-000000-bbbbbbbb")
    order = [c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY)]
    assert order == ["0101-000000-aaaaaaaa", "0101-000000-bbbbbbbb", "0101-000000-cccccccc"]


def test_a_process_killed_inside_a_commit_leaves_the_state_before_it(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    cluster = store.add_cluster(WORKSPACE_KEY)
    before = store.snapshot()
    # The child changes a cluster and the root in one transaction and is killed after the
    # cluster's row is written inside the commit, before the root's: neither may be seen.
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os, signal
            from pathlib import Path
            from provisioner.sandbox.store import SandboxStore
            s = SandboxStore(Path({str(tmp_path)!r}))
            conn = s._db._connect()
            def trace(sql):
                if sql.startswith("INSERT OR REPLACE INTO root"):
                    os.kill(os.getpid(), signal.SIGKILL)
            conn.set_trace_callback(trace)
            with s._txn() as state:
                state["workspaces"][{WORKSPACE_KEY!r}]["clusters"][{cluster!r}]["spec"]["num_workers"] = 7
                state["revoked_tokens"] = 99
        """),
        ],
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert child.returncode == -9
    after = SandboxStore(tmp_path)
    assert after.snapshot() == before
    after.resize_cluster(WORKSPACE_KEY, cluster, num_workers=3)  # the lock is free, the database usable
    assert after.get_cluster(WORKSPACE_KEY, cluster)["num_workers"] == 3  # type: ignore[index]


def test_a_state_file_of_an_earlier_version_is_imported_once_and_removed(tmp_path: Path) -> None:
    old = SandboxStore(tmp_path / "old", cluster_start_seconds=600)  # one restart still pending
    body = old.dlz_credentials(EMULATOR_ORG_ID, "prod")
    first = old.add_cluster(WORKSPACE_KEY, cluster_id="0101-000000-aaaaaaaa")
    second = old.add_cluster(WORKSPACE_KEY, cluster_id="0101-000000-zzzzzzzz")
    old.restart_cluster(WORKSPACE_KEY, first)
    document = old.snapshot()
    legacy = tmp_path / "new" / "state.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps(document))
    os.chmod(legacy, 0o600)
    new = SandboxStore(tmp_path / "new", cluster_start_seconds=600)
    assert new.dlz_credentials(EMULATOR_ORG_ID, "prod") == body
    assert [c["cluster_id"] for c in new.list_clusters(WORKSPACE_KEY)] == [first, second]
    assert new.snapshot() == old.snapshot()
    assert not legacy.exists()  # it held SAS tokens: not left behind
    with sqlite3.connect(tmp_path / "new" / "state.db") as db:
        assert db.execute("SELECT count(*) FROM clusters").fetchone() == (2,)
        # the pending restart is indexed for the clock
        assert db.execute("SELECT id FROM clusters WHERE wake IS NOT NULL").fetchall() == [(first,)]


def test_a_purge_due_at_load_removes_the_cluster_once(tmp_path: Path) -> None:
    """The purge and the end of a transition are both found through the wake index; a cluster
    due for one is visited once per load (a cluster read twice was deleted twice)."""
    store = SandboxStore(tmp_path)
    old = store.add_cluster(WORKSPACE_KEY, state="TERMINATED")
    kept = store.add_cluster(WORKSPACE_KEY)
    store.age_cluster(WORKSPACE_KEY, old, 31)
    assert [c["cluster_id"] for c in store.list_clusters(WORKSPACE_KEY)] == [kept]
    assert store.get_cluster(WORKSPACE_KEY, kept)["state"] == "RUNNING"  # type: ignore[index]
    with pytest.raises(DatabricksError) as err:
        store.get_cluster(WORKSPACE_KEY, old)
    assert err.value.error_code == "INVALID_STATE"


def test_a_listing_writes_only_what_the_clock_changed(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path, cluster_start_seconds=0.0)
    ids = [store.add_cluster(WORKSPACE_KEY) for _ in range(5)]
    store.restart_cluster(WORKSPACE_KEY, ids[2])  # ends at once: applied by the next load
    seen = _cluster_statements(store)
    assert [c["state"] for c in store.list_clusters(WORKSPACE_KEY)] == ["RUNNING"] * 5
    writes = [sql for sql in seen if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1 and ids[2] in writes[0]
    with sqlite3.connect(tmp_path / "state.db") as db:  # committed, for every other reader
        (body,) = db.execute("SELECT body FROM clusters WHERE id = ?", (ids[2],)).fetchone()
    assert json.loads(body)["state"] == "RUNNING"
