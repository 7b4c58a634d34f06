"""The PostgreSQL backend's lock: a session-level advisory lock in the state's database.

Terraform's `pg` backend (`internal/backend/remote-state/pg/client.go`) locks with the
one-`bigint` form — `pg_try_advisory_lock(<states.id>)` and `pg_try_advisory_lock(-1)` while
it creates a workspace. This lock uses the two-`integer` form, whose key space PostgreSQL
keeps apart from the `bigint` one ("Functions for advisory locks": the two key spaces do not
overlap), so it can never be mistaken for Terraform's: (a constant for this tool, a hash of
the environment's schema). A session-level advisory lock belongs to its connection: when the
holder dies its connection closes and the server drops the lock at once; when the holder's
host vanishes, the server drops it once TCP gives the connection up (keepalives).

Who holds it, and the records (the rotation journal), live in a table beside Terraform's
`states` in the environment's schema; the connection string is Terraform's (PG_CONN_STR).
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provisioner.errors import ConfigError, ProvisionError
from provisioner.lock.holder import Holder
from provisioner.secret import mask

if TYPE_CHECKING:
    import psycopg

TABLE = "dlz_provisioner_records"
HOLDER_RECORD = "lock-holder"


def _int4(text: str) -> int:
    """A stable signed 32-bit key for `text` (the two-integer advisory lock form)."""
    value = zlib.crc32(text.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


TOOL_KEY = _int4("dlz-provisioner environment lock")


class PgLock:
    def __init__(self, conn_str: str, schema: str) -> None:
        self.conn_str = conn_str
        self.schema = schema
        self._key = (TOOL_KEY, _int4(schema))
        self._conn: psycopg.Connection[Any] | None = None  # the session that holds the lock
        self._held: Holder | None = None

    @property
    def where(self) -> str:
        return f"advisory lock on the pg backend's database (schema {self.schema})"

    @property
    def dead_holder(self) -> str:
        return "the server drops a session-level advisory lock when its connection closes"

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "terraform.backend: type pg: the environment lock needs psycopg — pip install 'dlz-provisioner[pg]'"
            ) from None
        try:
            return psycopg.connect(
                self.conn_str, autocommit=True, application_name="dlz-provisioner", connect_timeout=30
            )
        except psycopg.Error as exc:
            raise ProvisionError(
                f"cannot connect to the pg backend for the environment lock: {mask(str(exc))}"
            ) from None

    def try_acquire(self, holder: Holder) -> bool:
        if self._conn is None:
            self._conn = self._connect()
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._key).fetchone()
        if not (row and row[0]):
            return False
        self._held = holder
        self._ensure_table()
        self.write_record(HOLDER_RECORD, holder.as_json())
        return True

    def holder(self) -> Holder | None:
        return Holder.from_json(self.read_record(HOLDER_RECORD))

    def release(self) -> None:
        conn, held = self._conn, self._held
        self._conn, self._held = None, None
        if conn is None:
            return
        try:
            if held is not None:
                conn.execute(
                    f'DELETE FROM "{self.schema}".{TABLE} WHERE name = %s AND doc::jsonb ->> %s = %s',
                    (HOLDER_RECORD, "run_id", held.run_id),
                )
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._key)
        finally:
            conn.close()  # closing the session drops the lock in any case

    def close(self) -> None:
        self.release()

    def _ensure_table(self) -> None:
        """The schema (as Terraform's backend creates it) and the records table; under the lock."""
        import psycopg

        assert self._conn is not None
        for sql in (
            f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"',
            f'CREATE TABLE IF NOT EXISTS "{self.schema}".{TABLE} '
            "(name text PRIMARY KEY, doc text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
        ):
            # `terraform init` of an unlocked command (plan, status) may create it at the same instant.
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                self._conn.execute(sql)

    def _records(self) -> psycopg.Connection[Any]:
        return self._conn if self._conn is not None else self._connect()

    def read_record(self, name: str) -> dict[str, Any] | None:
        import psycopg

        conn = self._records()
        try:
            row = conn.execute(f'SELECT doc FROM "{self.schema}".{TABLE} WHERE name = %s', (name,)).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return None  # no run has locked this environment yet
        finally:
            if conn is not self._conn:
                conn.close()
        if row is None:
            return None
        try:
            doc = json.loads(row[0])
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def write_record(self, name: str, doc: Mapping[str, Any]) -> None:
        conn = self._records()
        try:
            conn.execute(
                f'INSERT INTO "{self.schema}".{TABLE} (name, doc) VALUES (%s, %s) '
                "ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()",
                (name, json.dumps(dict(doc), sort_keys=True)),
            )
        finally:
            if conn is not self._conn:
                conn.close()

    def delete_record(self, name: str) -> None:
        import psycopg

        conn = self._records()
        try:
            conn.execute(f'DELETE FROM "{self.schema}".{TABLE} WHERE name = %s', (name,))
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            pass
        finally:
            if conn is not self._conn:
                conn.close()
