"""Fault knobs: what the emulators make of the next requests (consumed atomically)."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.sandbox.files import atomic_write
from provisioner.sandbox.store.base import DEFAULT_FAULTS, StoreBase


@dataclass(frozen=True)
class AepFault:
    """What the fault knobs make of one AEP request (consumed atomically)."""

    latency_ms: int = 0
    html: bool = False
    status: int | None = None  # 429 or a 5xx
    retry_after: int | None = None


@dataclass(frozen=True)
class WorkspaceFault:
    """What the fault knobs make of one workspace call: an answer instead of working, or a hold."""

    status: int | None = None  # 429, 500 or a 5xx: answered instead of doing the call
    retry_after: int | None = None
    hold_until: str | None = None  # the call works, then its answer waits for this file


HOLD_LIMIT_SECONDS = 300


def _knob_name(name: str) -> str:
    # Lets callers write set_faults(aep_status_429=2) as well as **{"aep.status_429": 2}.
    return name if "." in name else name.replace("_", ".", 1)


class FaultStore(StoreBase):
    def faults(self) -> dict[str, Any]:
        with self._txn() as state:
            return copy.deepcopy(state["faults"])

    def set_faults(self, **knobs: Any) -> None:
        """Merge knob values: `set_faults(aep_status_429=2)` or `**{"aep.status_429": 2}`."""
        updates = {_knob_name(k): v for k, v in knobs.items()}
        unknown = sorted(set(updates) - set(DEFAULT_FAULTS))
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}")
        if "aep.expired" in updates:
            updates["aep.expired"] = int(updates["aep.expired"])
        with self._txn() as state:
            state["faults"].update(copy.deepcopy(updates))

    def clear_faults(self) -> None:
        with self._txn() as state:
            state["faults"] = copy.deepcopy(DEFAULT_FAULTS)

    def take_aep_fault(self) -> AepFault:
        """Consume at most one status fault (HTML page, then 429, then 5xx) for a request."""
        with self._txn() as state:
            f = state["faults"]
            latency = int(f.get("aep.latency_ms") or 0)
            if f.get("aep.html", 0) > 0:
                f["aep.html"] -= 1
                return AepFault(latency_ms=latency, html=True)
            if f.get("aep.status_429", 0) > 0:
                f["aep.status_429"] -= 1
                retry = f.get("aep.retry_after")
                return AepFault(latency_ms=latency, status=429, retry_after=retry)
            if f.get("aep.status_5xx", 0) > 0:
                f["aep.status_5xx"] -= 1
                return AepFault(latency_ms=latency, status=int(f.get("aep.status_5xx_code") or 503))
            return AepFault(latency_ms=latency)

    def take_workspace_fault(self, endpoint: str) -> WorkspaceFault | None:
        """What the next call to `endpoint` answers instead of working, if anything (one transaction).

        `workspace.fail[endpoint]` → 500; then `workspace.status_429` → 429 with Retry-After
        (`workspace.retry_after` seconds, None = no header); then `workspace.status_5xx`;
        else `workspace.hold_answer[endpoint]` (not consumed) holds the answer.
        """
        with self._txn() as state:
            f = state["faults"]
            fails = f.setdefault("workspace.fail", {})
            if fails.get(endpoint, 0) > 0:
                fails[endpoint] -= 1
                return WorkspaceFault(500)
            if f.get("workspace.status_429", 0) > 0:
                f["workspace.status_429"] -= 1
                retry = f.get("workspace.retry_after")
                return WorkspaceFault(429, None if retry is None else int(retry))
            if f.get("workspace.status_5xx", 0) > 0:
                f["workspace.status_5xx"] -= 1
                return WorkspaceFault(int(f.get("workspace.status_5xx_code") or 503))
            hold = (f.get("workspace.hold_answer") or {}).get(endpoint)
            return WorkspaceFault(hold_until=str(hold)) if hold else None

    def take_connection_answer_lost(self) -> bool:
        """True (and one fewer left) when the next connection POST's answer is lost after it took effect."""
        with self._txn() as state:
            f = state["faults"]
            if f.get("aep.connection_answer_lost", 0) > 0:
                f["aep.connection_answer_lost"] -= 1
                return True
            return False

    # ---- barriers for tests: a point where the emulator stops until a file exists -----------
    # Kept in a file of their own (not the state): with none armed, the check is one stat(), so
    # every workspace request does not pay a transaction for it.

    @property
    def _holds_path(self) -> Path:
        return self.state_dir / "holds.json"

    def arm_hold(self, point: str, file: Path, *, skip: int = 0, client: str = "") -> None:
        """At `point` ("after:aep.refresh", "before:<endpoint>", "after:<endpoint>" of the workspace
        API), for a caller whose User-Agent starts with `client`, after `skip` passes: write
        "<file>.reached" and wait until `file` exists. Once."""
        with self._txn():  # the store's lock guards the holds file too
            holds = self._read_holds()
            holds[point] = {"file": str(file), "skip": skip, "client": client}
            atomic_write(self._holds_path, json.dumps(holds), mode=0o600)

    def _read_holds(self) -> dict[str, Any]:
        try:
            doc = json.loads(self._holds_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def take_hold(self, point: str, client: str = "") -> Path | None:
        """The barrier file armed at `point` for this client, consumed (after `skip` passes), or None."""
        if not self._holds_path.exists():
            return None
        with self._txn():
            holds = self._read_holds()
            spec = holds.get(point)
            if not isinstance(spec, dict) or not client.startswith(str(spec.get("client", ""))):
                return None
            if int(spec.get("skip", 0)) > 0:
                spec["skip"] = int(spec["skip"]) - 1
            else:
                del holds[point]
            if holds:
                atomic_write(self._holds_path, json.dumps(holds), mode=0o600)
            else:
                self._holds_path.unlink()
            return None if point in holds else Path(str(spec["file"]))

    def hold(self, point: str, client: str = "") -> None:
        """If a barrier is armed at `point`: say so ("<file>.reached") and wait until <file> exists."""
        barrier = self.take_hold(point, client)
        if barrier is None:
            return
        barrier.with_name(barrier.name + ".reached").touch()
        # Released by the test (or by killing this process); bounded, so a test that never
        # releases fails on its own assertions instead of hanging the server.
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while not barrier.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
