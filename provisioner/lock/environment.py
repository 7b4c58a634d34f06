"""One lock per environment, held by every command that changes AEP, the workspace or the
state (`apply`, `rotate`, `destroy`, `adopt`, `connect`) from before its first change to its end.

It lives where the state lives, so every runner that can reach the state sees it: an `flock`
beside a local state (provisioner.lock.local), an advisory lock in the pg backend's database
(provisioner.lock.pg), a lease on a blob beside the azurerm state blob
(provisioner.lock.azurerm). A second run waits up to `--lock-timeout` (default 0s: refused at
once, as Terraform's own state lock) and is then refused with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.clock import Clock, RealClock
from provisioner.errors import ConfigError, ProvisionError
from provisioner.lock.holder import Holder
from provisioner.lock.store import LockStore

if TYPE_CHECKING:
    from provisioner.config.model import Environment

POLL_SECONDS = 1.0


class LockBusy(ProvisionError):
    """Another run holds the environment's lock (for as long as this run would wait)."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def lock_store(env: Environment, environ: Mapping[str, str]) -> LockStore:
    """The lock (and records) of `env`'s backend: beside its state, as the rendered root says."""
    from provisioner.render.root import backend_settings

    settings = backend_settings(env)
    kind = env.backend.type
    if kind == "local":
        from provisioner.lock.local import LocalLock

        return LocalLock(env.root_dir / Path(str(settings.get("path", "terraform.tfstate"))))
    if kind == "pg":
        from provisioner.lock.pg import PgLock

        if not environ.get("PG_CONN_STR"):
            raise ConfigError(
                "terraform.backend: type pg reads its connection string from PG_CONN_STR, "
                "which is not set — export PG_CONN_STR=postgres://user@host/db"
            )
        return PgLock(environ["PG_CONN_STR"], str(settings["schema_name"]))
    if kind == "azurerm":
        from provisioner.lock.azurerm import BlobLeaseLock, container_for

        return BlobLeaseLock(container_for(settings, environ), str(settings["key"]))
    raise ConfigError(f"terraform.backend: type {kind!r} has no environment lock")


@contextlib.contextmanager
def holding(
    store: LockStore,
    env_name: str,
    holder: Holder,
    timeout: float,
    clock: Clock | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Holder | None]:
    """Hold the lock for the block; yields who held it when this run started waiting (None: free)."""
    clock = clock or RealClock()
    deadline = clock.monotonic() + timeout
    waited_for: Holder | None = None
    waiting = False
    try:
        while not store.try_acquire(holder):
            other = store.holder()
            waited_for = waited_for or other
            if clock.monotonic() >= deadline:
                raise LockBusy(_busy(env_name, other, store, timeout), other)
            if on_wait is not None and not waiting:
                on_wait(f"{env_name}: waiting for {_who(other)} to release the environment lock ({store.where})")
            waiting = True
            clock.sleep(min(POLL_SECONDS, max(0.0, deadline - clock.monotonic())) or POLL_SECONDS)
        yield waited_for
    finally:
        store.close()


def _who(holder: Holder | None) -> str:
    return holder.describe() if holder is not None else "another run (it did not say who)"


def _busy(env_name: str, holder: Holder | None, store: LockStore, timeout: float) -> str:
    waited = f"after waiting {timeout:g}s" if timeout > 0 else "at once"
    return (
        f"{env_name}: another run holds this environment's lock — {_who(holder)}; refused {waited} "
        f"({store.where}). Let it finish, or rerun with --lock-timeout 15m to wait for it "
        f"(a holder that died does not block: {store.dead_holder})"
    )


def seconds(duration: str) -> float:
    """A Terraform (Go) duration as --lock-timeout takes it (0s, 90s, 5m, 1m30s, 500ms) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))
