"""Terraform's team-use errors (backend changed, state locked) rephrased with the provision flag to use."""

from __future__ import annotations

from pathlib import Path

from provisioner.terraform.diagnostics import explain, lost_catalog_race

ROOT = Path("/work/terraform/prod")

BACKEND_CHANGED = """
╷
│ Error: Backend configuration changed
│
│ A change in the backend configuration has been detected, which may require
│ migrating existing state.
│
│ If you wish to attempt automatic migration of the state, use "terraform init
│ -migrate-state".
╵
"""

LOCAL_LOCK = """
╷
│ Error: Error acquiring the state lock
│
│ Error message: resource temporarily unavailable
│ Lock Info:
│   ID:        0bd3f2c6-39d8-7d4c-2a6e-4f7b6c0c9a11
│   Path:      terraform.tfstate
│   Operation: OperationTypeApply
│   Who:       ci@runner
│   Version:   1.11.4
│   Created:   2026-11-25 16:41:01 +0000 UTC
│   Info:
│
│
│ Terraform acquires a state lock to protect the state from being written
│ by multiple users at the same time.
╵
"""

PG_LOCK = LOCAL_LOCK.replace("resource temporarily unavailable", "Workspace is already locked: default")

BROKEN_STATE = """
Error: Error acquiring the state lock

Error message: 2 problems:

- Unsupported state file format: The state file could not be parsed as JSON:
syntax error at byte offset 1.

Terraform acquires a state lock to protect the state from being written
by multiple users at the same time.
"""


def test_backend_change_names_the_flag() -> None:
    text = explain("init", ROOT, BACKEND_CHANGED)
    assert text is not None and text.startswith(f"terraform init in {ROOT}: ")
    assert "pass --migrate-state" in text and "\n" not in text


def test_a_held_lock_says_how_to_wait_and_how_to_release_a_stale_one() -> None:
    text = explain("apply", ROOT, LOCAL_LOCK)
    assert text is not None and "the state is locked by another run (resource temporarily unavailable)" in text
    assert "--lock-timeout" in text
    assert f"terraform -chdir={ROOT} force-unlock 0bd3f2c6-39d8-7d4c-2a6e-4f7b6c0c9a11" in text


def test_a_pg_lock_is_not_force_unlocked_with_the_requesters_own_id() -> None:
    text = explain("plan", ROOT, PG_LOCK)
    assert text is not None and "Workspace is already locked" in text
    assert "force-unlock" not in text and "PostgreSQL releases the lock" in text


def test_a_lock_failure_that_is_not_a_held_lock_shows_terraforms_reason() -> None:
    text = explain("plan", ROOT, BROKEN_STATE)
    assert text is not None and "could not lock the state" in text
    assert "Unsupported state file format" in text and "locked by another run" not in text


def test_other_errors_are_left_alone() -> None:
    assert explain("plan", ROOT, "Error: Invalid provider configuration") is None


def test_only_a_lost_race_on_postgresqls_catalog_counts_as_one() -> None:
    boxed = '╷\n│ Error: pq: duplicate key value violates unique constraint "{}"\n│\n╵\n'
    for index in ("pg_class_relname_nsp_index", "pg_type_typname_nsp_index", "pg_namespace_nspname_index"):
        assert lost_catalog_race(boxed.format(index)), index
    # A duplicate in a table of Terraform's (its states' names) is not a race to run again.
    assert not lost_catalog_race(boxed.format("states_name_key"))
    assert not lost_catalog_race('Error: pq: password authentication failed for user "postgres"')
