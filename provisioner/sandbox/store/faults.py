"""Fault knobs: what the emulators make of the next requests (consumed atomically)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

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
