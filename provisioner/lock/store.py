"""What every backend's lock offers: take it without waiting, say who has it, let it go, and
keep small records (the rotation journal) beside it, readable by any run without the lock."""

from __future__ import annotations

from typing import Any, Protocol

from provisioner.lock.holder import Holder


class LockStore(Protocol):
    @property
    def where(self) -> str:
        """Where the lock lives, for messages (no secret: no connection string, no key)."""
        ...

    @property
    def dead_holder(self) -> str:
        """How a holder that died stops holding it, for the refusal and the README."""
        ...

    def try_acquire(self, holder: Holder) -> bool:
        """Take the lock now (True) or not (False: another run has it); never waits."""
        ...

    def holder(self) -> Holder | None:
        """Who holds it, as the holder recorded itself; None when that cannot be told."""
        ...

    def release(self) -> None: ...

    def read_record(self, name: str) -> dict[str, Any] | None: ...

    def write_record(self, name: str, doc: dict[str, Any]) -> None: ...

    def delete_record(self, name: str) -> None: ...

    def close(self) -> None:
        """Let go of connections (the lock too, if still held)."""
        ...
