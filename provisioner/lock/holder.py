"""Who holds an environment's lock: enough for the person who is refused to find that run."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# The CI systems the tool documents, and the variable naming the run in each (their docs:
# GitHub Actions "Default environment variables", Azure Pipelines "Predefined variables").
_CI_RUNS = (
    ("GITHUB_RUN_ID", "GitHub Actions run"),
    ("BUILD_BUILDID", "Azure Pipelines build"),
)


@dataclass(frozen=True)
class Holder:
    """A run holding (or about to hold) the lock. No secret: host, process, CI run, command, time."""

    host: str
    pid: int
    command: str  # e.g. "rotate"
    since: str  # ISO 8601 UTC, when the lock was taken
    ci_run: str | None = None  # e.g. "GitHub Actions run 123456"
    run_id: str = ""  # random: tells this run's records from another's with the same host and pid

    @classmethod
    def this_run(cls, command: str, environ: Mapping[str, str], now: dt.datetime | None = None) -> Holder:
        ci = next((f"{label} {environ[var]}" for var, label in _CI_RUNS if environ.get(var)), None)
        when = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        return cls(socket.gethostname(), os.getpid(), command, when, ci, uuid.uuid4().hex)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Holder | None:
        if not isinstance(doc, Mapping):
            return None
        try:
            return cls(
                str(doc["host"]),
                int(doc["pid"]),
                str(doc.get("command", "?")),
                str(doc.get("since", "?")),
                None if doc.get("ci_run") is None else str(doc["ci_run"]),
                str(doc.get("run_id", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def where(self) -> str:
        """Which run: CI run (if any), host, process."""
        host = f"{self.ci_run} on {self.host}" if self.ci_run else f"host {self.host}"
        return f"{host}, pid {self.pid}"

    def describe(self) -> str:
        return f"`provision {self.command}` ({self.where()}) since {self.since}"
