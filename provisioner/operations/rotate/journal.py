"""The rotation journal: how far a rotation got, kept beside the environment's lock (same
backend: a file beside a local state, a row in the pg backend's database, a blob beside the
azurerm state), so any runner — not only the one that began it — can finish it.

Phases, in order: `started` (about to refresh; the running clusters' start times are
recorded), `refreshed` (AEP issued a new token and revoked the old), `secret_written`
(secret_scope mode: the new value is in the scope), `restarts_requested`, `converged`. Each
with its time, and the new token's expiry date and fingerprint (the 16-hex prefix the scope's
fingerprint key already publishes) — never a token. A journal whose phase is not `converged`
is an unfinished rotation: `rotate` finishes it instead of refreshing again, `status` names
the one command that finishes it. A converged journal stays, so a run that waited for the
lock sees that the rotation it wanted happened meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.lock.store import LockStore
from provisioner.run.env_lock import records_of

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.run.context import RunContext

RECORD = "rotation"
PHASES = ("started", "refreshed", "secret_written", "restarts_requested", "converged")
CONVERGED = "converged"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JournalEntry:
    """One rotation as the journal has it."""

    doc: Mapping[str, Any]

    @property
    def phase(self) -> str:
        phase = self.doc.get("phase")
        return phase if phase in PHASES else "started"  # unreadable means "began, unknown how far"

    @property
    def finished(self) -> bool:
        return self.phase == CONVERGED

    def reached(self, phase: str) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(phase)

    def at(self, phase: str) -> dt.datetime | None:
        stamp = self.doc.get(f"{phase}_at")
        if not isinstance(stamp, str):
            return None
        try:
            return dt.datetime.fromisoformat(stamp)
        except ValueError:
            return None

    @property
    def started_at(self) -> str:
        return str(self.doc.get("started_at", "at an unknown time"))

    @property
    def seen_starts(self) -> dict[str, int] | None:
        seen = self.doc.get("seen_starts")
        if not isinstance(seen, dict):
            return None
        return {str(k): int(v) for k, v in seen.items() if isinstance(v, int | float)}

    @property
    def restarted(self) -> dict[str, int]:
        """Clusters the rotation restarted on the new token, with the start time it saw (ms)."""
        done = self.doc.get("restarted")
        return {str(k): int(v) for k, v in done.items()} if isinstance(done, dict) else {}

    @property
    def fingerprint(self) -> str | None:
        fp = self.doc.get("fingerprint")
        return fp if isinstance(fp, str) else None

    def never_refreshed(self, current_fingerprint: str) -> bool:
        """Stopped before AEP took the refresh: AEP still holds the token it was about to revoke."""
        return self.phase == "started" and self.doc.get("old_fingerprint") == current_fingerprint

    @property
    def by(self) -> str:
        return str(self.doc.get("by", "an earlier run"))

    def describe(self) -> str:
        return f"a rotation started {self.started_at} ({self.by}) stopped after phase `{self.phase}`"


class RotationJournal:
    def __init__(self, store: LockStore, env_name: str, now: Callable[[], dt.datetime] = _now) -> None:
        self.store = store
        self.env_name = env_name
        self._now = now
        self._doc: dict[str, Any] | None = None

    @property
    def where(self) -> str:
        return self.store.where

    def load(self) -> JournalEntry | None:
        doc = self.store.read_record(RECORD)
        self._doc = None if doc is None else dict(doc)
        return None if doc is None else JournalEntry(doc)

    def unfinished(self) -> JournalEntry | None:
        entry = self.load()
        return None if entry is None or entry.finished else entry

    def begin(self, by: str, seen_starts: Mapping[str, int], old_fingerprint: str) -> None:
        """About to refresh: the running clusters' start times (ms), and the fingerprint of the
        token about to be revoked (so a later run can tell whether the refresh happened)."""
        now = self._stamp()
        self._doc = {
            "environment": self.env_name,
            "phase": "started",
            "by": by,
            "started_at": now,
            "seen_starts": dict(seen_starts),
            "old_fingerprint": old_fingerprint,
        }
        self.store.write_record(RECORD, self._doc)

    def mark(self, phase: str, **fields: Any) -> None:
        """Record that `phase` was reached (with its time and `fields`); never a token."""
        if phase not in PHASES:
            raise ValueError(phase)
        doc = self._doc if self._doc is not None else dict(self.store.read_record(RECORD) or {})
        doc.update(fields)
        doc["phase"] = phase
        doc[f"{phase}_at"] = self._stamp()
        self._doc = doc
        self.store.write_record(RECORD, doc)

    def finish(self, **fields: Any) -> None:
        self.mark(CONVERGED, **fields)

    def forget(self) -> None:
        """The refresh did not happen: as if the rotation never began."""
        self._doc = None
        self.store.delete_record(RECORD)

    def _stamp(self) -> str:
        return self._now().isoformat(timespec="seconds")


def journal_of(ctx: RunContext, env: Environment) -> RotationJournal:
    """`env`'s rotation journal, beside its lock (the held one, if this run holds it)."""
    return RotationJournal(records_of(ctx, env), env.name)


def finished_since(ctx: RunContext, env: Environment, since: dt.datetime) -> str | None:
    """What finished a rotation of `env` at or after `since` (a run that waited for the lock), or None."""
    entry = journal_of(ctx, env).load()
    done = None if entry is None or not entry.finished else entry.at(CONVERGED)
    if done is None or done < since:
        return None
    return f"another run ({entry.by if entry else '?'}) rotated it (finished {done.isoformat()})"
