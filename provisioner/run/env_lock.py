"""The environment's lock for a run (provisioner.lock.environment), and where its records are read:
the held lock's store while this run holds it, else a store opened to read (e.g. `status`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from provisioner.clock import Clock
from provisioner.lock.environment import holding, lock_store
from provisioner.lock.holder import Holder
from provisioner.lock.store import LockStore

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.run.context import RunContext


@contextlib.contextmanager
def hold_environment(
    ctx: RunContext, env: Environment, command: str, timeout: float, clock: Clock | None = None
) -> Iterator[Holder | None]:
    """Hold `env`'s lock for the block (see `holding`); its records are `records_of(ctx, env)` meanwhile."""
    store = lock_store(env, ctx.environ)
    holder = Holder.this_run(command, ctx.environ)
    with holding(store, env.name, holder, timeout, clock or ctx.clock, ctx.console.info) as waited:
        ctx.held_locks[env.name] = store
        try:
            yield waited
        finally:
            ctx.held_locks.pop(env.name, None)


def records_of(ctx: RunContext, env: Environment) -> LockStore:
    """Where `env`'s records live: the held lock's store, or (to read, e.g. `status`) a new one."""
    return ctx.held_locks.get(env.name) or lock_store(env, ctx.environ)
