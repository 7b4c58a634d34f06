"""A throwaway PostgreSQL server (Terraform's `pg` backend) on 127.0.0.1 with a password, for the
tests of remote state and of the environment lock on pg."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

SCHEMA = "dlz_default"  # the pg backend's schema for environment `default` (render's default)


@dataclass
class PgServer:
    port: int
    password: str
    database: str

    @property
    def conn_str(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{self.database}?sslmode=disable"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conn_str, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []

    def advisory_locks(self) -> int:
        return int(self.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0])

    def state(self) -> dict[str, Any]:
        rows = self.query(f"SELECT data FROM {SCHEMA}.states WHERE name = 'default'")
        assert len(rows) == 1, rows
        doc: dict[str, Any] = json.loads(rows[0][0])
        return doc


def _as_server_user(argv: list[str]) -> tuple[list[str], int | None]:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (or `nobody`)."""
    if os.geteuid() != 0:
        return argv, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            uid = pwd.getpwnam(name).pw_uid
            if shutil.which("runuser"):
                return ["runuser", "-u", name, "--", *argv], uid
            return ["su", "-s", "/bin/sh", name, "-c", shlex.join(argv)], uid
    pytest.skip("running as root and there is neither a postgres nor a nobody user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of its own on 127.0.0.1 (skips the test where its binaries are missing)."""
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"PostgreSQL server binaries not on PATH ({', '.join(missing)}) — run .ci/install-postgres.sh")
    # Not under pytest's tmp dir: that is private to root, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="dlz-pg-"))
    password = "pgPW-" + secrets.token_urlsafe(12)
    _, uid = _as_server_user(["true"])
    (base / "pwfile").write_text(password + "\n")
    if uid is not None:
        for path in (base, base / "pwfile"):
            os.chown(path, uid, -1)
    os.chmod(base, 0o700)
    data = base / "data"

    def run(argv: list[str]) -> None:
        cmd, _ = _as_server_user(argv)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{shlex.join(argv)}: {done.stdout}{done.stderr}"

    run(
        [
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={base / 'pwfile'}",
            "-A",
            "scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
    )
    # PostgreSQL cannot bind port 0: a port chosen beforehand can be taken by another process's
    # connection before the postmaster binds it, so a start refused that way tries another port.
    for attempt in range(3):
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {base} -F"
        started, _ = _as_server_user(
            ["pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "start", "-o", options]
        )
        done = subprocess.run(started, capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            break
        log = (base / "server.log").read_text(errors="replace") if (base / "server.log").exists() else ""
        assert "Address already in use" in log and attempt < 2, f"pg_ctl start: {done.stdout}{done.stderr}{log}"
    try:
        server = PgServer(port, password, "postgres")
        server.query("CREATE DATABASE tfstate")
        yield PgServer(port, password, "tfstate")
    finally:
        with contextlib.suppress(Exception):
            run(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
