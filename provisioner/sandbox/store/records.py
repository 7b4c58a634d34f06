"""Where the store's state lives on disk: one SQLite row per cluster, one for everything else.

The mixins see one JSON-shaped document per transaction (`State`), as before; this module
decides what a transaction reads and writes. Clusters are most of the document (99 % of it at
200 clusters, each carrying its spec, ACL and event log), and a request touches one or two of
them, so each cluster is its own row (`clusters`: workspace, id, JSON body, `wake`) and the
rest of the world is one small row (`root`). A transaction reads the root and, lazily, only
the clusters it asks for (`ClusterTable`); at the end it writes back only the rows whose JSON
changed, in one SQLite transaction. A request costs O(1) in the number of clusters; a listing
costs O(clusters listed). The whole-document store it replaces parsed and rewrote ~0.45 MB per
transaction at 200 clusters (bench/NOTES.md, "At 200 clusters").

`wake` is when a cluster next changes by itself (a pending start or termination ends, a
terminated cluster is purged: the store's `_cluster_wake`), so the lazy clock
(`StoreBase._advance_clock`) visits only the clusters that are due, through `due_clusters`,
instead of every cluster on every transaction.

Guarantees kept from the JSON file:
- **Two processes at once**: every transaction still runs under the exclusive `flock` on
  `state.lock` (the sandbox server, a second `provision` run and a test process serialise
  there), and SQLite's own locking backs it.
- **Crash safety**: a transaction's rows are committed together; a process killed mid-commit
  leaves the previous state, and a committed one survives any process's death (WAL with
  `synchronous=NORMAL`: the commit is in the WAL before the lock is released; the fsync comes at
  checkpoints). Only a power loss of the host may forget the last commits, never half of one —
  the price of not waiting ~2-25 ms on the disk for each of a rotation's requests, which the
  whole-file store paid (an fsync per write) and which was part of the 200-cluster bound.
- **0600**: the database holds SAS tokens and secret values; it is created 0600 and SQLite
  gives its `-wal`/`-shm` files the database's mode.

A `state.json` left by an earlier version is imported once, then removed (it holds secrets).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

Record = dict[str, Any]
WakeFn = Callable[[Mapping[str, Any]], float | None]

DB_NAME = "state.db"
LEGACY_NAME = "state.json"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS root (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)",
    # `clusters.values()` lists by id, as the JSON document did (written with sort_keys).
    "CREATE TABLE IF NOT EXISTS clusters (ws TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, wake REAL,"
    " UNIQUE (ws, id))",
    "CREATE INDEX IF NOT EXISTS clusters_wake ON clusters (ws, wake) WHERE wake IS NOT NULL",
)


def dump(doc: Any) -> str:
    # Compact and sorted: the C encoder (an indented dump is pure Python), one text per value
    # so that "changed" is a string comparison.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=dict)


class ClusterTable(MutableMapping[str, Record]):
    """One workspace's clusters inside one transaction, read from the database on demand.

    Every record handed out is the transaction's own parsed copy; `writes` compares each with
    the text it was read from, so a change made through any reference is written back.
    """

    def __init__(self, conn: sqlite3.Connection, ws: str, wake: WakeFn) -> None:
        self._conn = conn
        self._ws = ws
        self._wake = wake
        self._seen: dict[str, tuple[str | None, Record]] = {}  # id -> (text read or None if new, record)
        self._deleted: set[str] = set()
        self._order: list[str] | None = None  # ids in the database, in order
        self._all_read = False

    # ---- the mapping -------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        if self._order is None:
            rows = self._conn.execute("SELECT id FROM clusters WHERE ws = ? ORDER BY id", (self._ws,))
            self._order = [r[0] for r in rows]
        return self._order

    def _read_all(self) -> None:
        if self._all_read:
            return
        rows = self._conn.execute("SELECT id, body FROM clusters WHERE ws = ? ORDER BY id", (self._ws,))
        order = []
        for cid, body in rows:
            order.append(cid)
            if cid not in self._seen and cid not in self._deleted:
                self._seen[cid] = (body, json.loads(body))
        self._order = order
        self._all_read = True

    def __getitem__(self, cid: str) -> Record:
        if cid in self._deleted:
            raise KeyError(cid)
        seen = self._seen.get(cid)
        if seen is not None:
            return seen[1]
        row = self._conn.execute("SELECT body FROM clusters WHERE ws = ? AND id = ?", (self._ws, cid)).fetchone()
        if row is None:
            raise KeyError(cid)
        record: Record = json.loads(row[0])
        self._seen[cid] = (row[0], record)
        return record

    def __setitem__(self, cid: str, record: Record) -> None:
        self._deleted.discard(cid)
        self._seen[cid] = (None, record)

    def __delitem__(self, cid: str) -> None:
        self[cid]  # KeyError if absent
        self._deleted.add(cid)
        self._seen.pop(cid, None)

    def __iter__(self) -> Iterator[str]:
        self._read_all()
        stored = self._ids()
        known = set(stored)
        ids = [c for c in stored if c not in self._deleted] + [c for c in self._seen if c not in known]
        return iter(ids)

    def __len__(self) -> int:
        known = set(self._ids())
        return len(known - self._deleted) + sum(1 for c in self._seen if c not in known)

    def __contains__(self, cid: object) -> bool:
        if not isinstance(cid, str) or cid in self._deleted:
            return False
        if cid in self._seen:
            return True
        row = self._conn.execute("SELECT 1 FROM clusters WHERE ws = ? AND id = ?", (self._ws, cid)).fetchone()
        return row is not None

    # ---- for the store ---------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[str, Record]]:
        """The clusters whose `wake` has come (read ones judged on their current contents)."""
        rows = self._conn.execute(
            "SELECT id FROM clusters WHERE ws = ? AND wake IS NOT NULL AND wake <= ? ORDER BY id", (self._ws, now)
        )
        ids = [r[0] for r in rows if r[0] not in self._seen and r[0] not in self._deleted]
        due = [(cid, record) for cid, (_, record) in self._seen.items() if _is_due(self._wake(record), now)]
        return due + [(cid, self[cid]) for cid in ids]  # each once: these were not read before

    def writes(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements that store this transaction's changes (none when nothing changed)."""
        out: list[tuple[str, tuple[Any, ...]]] = []
        for cid in sorted(self._deleted):
            out.append(("DELETE FROM clusters WHERE ws = ? AND id = ?", (self._ws, cid)))
        for cid, (text, record) in self._seen.items():
            body = dump(record)
            if body != text:
                out.append(_upsert(self._ws, cid, body, self._wake(record)))
        return out


def _is_due(wake: float | None, now: float) -> bool:
    return wake is not None and wake <= now


def _upsert(ws: str, cid: str, body: str, wake: float | None) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO clusters (ws, id, body, wake) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (ws, id) DO UPDATE SET body = excluded.body, wake = excluded.wake",
        (ws, cid, body, wake),
    )


def due_clusters(ws: Mapping[str, Any], now: float) -> list[tuple[str, Record]]:
    """The workspace's clusters that may change by themselves at `now` (all of them when the
    clusters are a plain dict: a workspace made in this transaction)."""
    clusters = ws.get("clusters")
    if isinstance(clusters, ClusterTable):
        return clusters.due(now)
    return list((clusters or {}).items())


class Database:
    """The SQLite file of one store; one connection per process (reopened after a fork)."""

    def __init__(self, state_dir: Path, wake: WakeFn) -> None:
        self.path = state_dir / DB_NAME
        self._legacy = state_dir / LEGACY_NAME
        self._wake = wake
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._guard = threading.Lock()  # the server's threads share the connection

    def _connect(self) -> sqlite3.Connection:
        """Called under the store's flock."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # 0600 before SQLite creates it
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            conn.execute(statement)
        self._import_legacy(conn)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _import_legacy(self, conn: sqlite3.Connection) -> None:
        if not self._legacy.exists() or conn.execute("SELECT 1 FROM root").fetchone() is not None:
            return
        doc = json.loads(self._legacy.read_text() or "{}")
        if doc:
            statements = _split(doc, self._wake)
            conn.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        self._legacy.unlink()

    def locked(self) -> threading.Lock:
        return self._guard

    def read(self, fresh: Callable[[], Record]) -> tuple[Record, str | None, dict[str, ClusterTable]]:
        """The transaction's state: the root parsed, each workspace's clusters a lazy table."""
        conn = self._connect()
        row = conn.execute("SELECT body FROM root WHERE id = 1").fetchone()
        text: str | None = row[0] if row else None
        state: Record = json.loads(text) if text else fresh()
        tables: dict[str, ClusterTable] = {}
        for key, ws in state.get("workspaces", {}).items():
            tables[key] = ws["clusters"] = ClusterTable(conn, key, self._wake)
        return state, text, tables

    def write(self, state: Mapping[str, Any], text: str | None, tables: Mapping[str, ClusterTable]) -> None:
        """Store what the transaction changed, in one SQLite transaction."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        workspaces: dict[str, Any] = {}
        for key, ws in (state.get("workspaces") or {}).items():
            clusters = ws.get("clusters")
            workspaces[key] = {k: v for k, v in ws.items() if k != "clusters"}
            if isinstance(clusters, ClusterTable) and clusters is tables.get(key):
                statements += clusters.writes()
            else:  # a workspace made, or its clusters replaced, in this transaction
                statements.append(("DELETE FROM clusters WHERE ws = ?", (key,)))
                statements += [_upsert(key, cid, dump(c), self._wake(c)) for cid, c in (clusters or {}).items()]
        for key in tables:
            if key not in workspaces:
                statements.append(("DELETE FROM clusters WHERE ws = ?", (key,)))
        body = dump({**state, "workspaces": workspaces})
        if body != text:
            statements.append(("INSERT OR REPLACE INTO root (id, body) VALUES (1, ?)", (body,)))
        if not statements:
            return
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _split(doc: Mapping[str, Any], wake: WakeFn) -> list[tuple[str, tuple[Any, ...]]]:
    """A whole JSON document (the old file) as rows."""
    statements: list[tuple[str, tuple[Any, ...]]] = []
    workspaces: dict[str, Any] = {}
    for key, ws in (doc.get("workspaces") or {}).items():
        workspaces[key] = {k: v for k, v in ws.items() if k != "clusters"}
        statements += [_upsert(key, cid, dump(c), wake(c)) for cid, c in (ws.get("clusters") or {}).items()]
    statements.append(
        ("INSERT OR REPLACE INTO root (id, body) VALUES (1, ?)", (dump({**doc, "workspaces": workspaces}),))
    )
    return statements
