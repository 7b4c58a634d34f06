"""Terraform errors a user meets in team use, rephrased as what happened and what to do.

Terraform's own text names `terraform init -migrate-state` or `-lock=false`; users of this
tool should instead be told the `provision` flag that does the right thing.
"""

from __future__ import annotations

import re
from pathlib import Path

_BACKEND_CHANGED = re.compile(r"Error: Backend configuration changed|backend type changed from")
_LOCK_FAILED = re.compile(r"Error: Error acquiring the state lock")
# The paragraph after "Error message:", up to Lock Info or Terraform's closing advice.
_LOCK_MESSAGE = re.compile(r"Error message:\s*(.+?)\s*(?:\nLock Info:|\n\s*\n\s*Terraform acquires|\Z)", re.S)
_LOCK_ID = re.compile(r"^\s*ID:\s*(\S+)", re.MULTILINE)
# Terraform's message when the lock is genuinely held by someone else (local, azurerm, pg).
_HELD = re.compile(r"already locked|lease already present|resource temporarily unavailable|conditional check", re.I)
# The system catalogs' unique indexes are all named pg_…; Terraform's own objects never are.
_CATALOG_RACE = re.compile(r'duplicate key value violates\s+unique constraint\s+"pg_\w+"')


def explain(what: str, root: Path, stderr_tail: str) -> str | None:
    """One line for a failure we know how to explain, or None to keep Terraform's headline."""
    text = _unboxed(stderr_tail)
    if _BACKEND_CHANGED.search(text):
        return (
            f"terraform {what} in {root}: the backend in provision.yaml (terraform.backend) is not the one "
            "this root's state is in — pass --migrate-state to copy the existing state to the new backend "
            "(or undo the backend change)"
        )
    if _LOCK_FAILED.search(text):
        found = _LOCK_MESSAGE.search(text)
        detail = " ".join(found.group(1).split())[:300] if found else "no detail"
        if not _HELD.search(detail):
            return f"terraform {what} in {root}: could not lock the state ({detail}) — fix that and rerun"
        return (
            f"terraform {what} in {root}: the state is locked by another run ({detail}) — wait for it to "
            f"finish and rerun, or pass --lock-timeout 10m to wait for it; {_stale_lock_hint(root, detail, text)}"
        )
    return None


def lost_catalog_race(stderr_tail: str) -> bool:
    """Did init fail because a concurrent init created the same pg backend object first?

    Terraform's pg backend (1.11; internal/backend/remote-state/pg/backend.go `configure`) runs
    `CREATE SCHEMA IF NOT EXISTS`, `CREATE SEQUENCE IF NOT EXISTS public.global_states_id_seq`
    (one for the whole database, whatever the schema) and `CREATE TABLE IF NOT EXISTS` on each
    init. IF NOT EXISTS checks PostgreSQL's catalog without a lock, so of two first inits at once
    the later insert into the catalog waits for the earlier and then fails on the catalog's unique
    index (SQLSTATE 23505 on `pg_class_relname_nsp_index`, `pg_type_typname_nsp_index` or
    `pg_namespace_nspname_index`; lib/pq prints "pq: " and the server's message). Terraform's
    output is the only report of it.
    """
    return _CATALOG_RACE.search(_unboxed(stderr_tail)) is not None


def _unboxed(stderr_tail: str) -> str:
    """Terraform boxes diagnostics with │ ╷ ╵; drop the box so patterns see plain lines."""
    return "\n".join(line.strip().lstrip("│╷╵").strip() for line in stderr_tail.splitlines())


def _stale_lock_hint(root: Path, detail: str, text: str) -> str:
    if "workspace" in detail.lower():
        # The pg backend's wording. Its locks are PostgreSQL advisory locks: they end with the
        # holder's connection, so a killed run cannot leave one behind (and the Lock Info
        # Terraform prints is the requester's own, not the holder's).
        return "PostgreSQL releases the lock by itself when the other run's connection ends"
    lock_id = _LOCK_ID.search(text)
    command = f"terraform -chdir={root} force-unlock {lock_id.group(1)}" if lock_id else "terraform force-unlock"
    return f"if no run is active any more, release the lock with `{command}`"
