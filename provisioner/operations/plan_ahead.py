"""Plan the root on disk while AEP and the workspace answer; keep that plan only if it is the one.

A plan's inputs are the root's files, Terraform's child environment and the state. In
secret_scope mode no token is among them (the clusters carry a `{{secrets/…}}` reference), and
the usual root on disk is the one this run will render: roots are generated, committed and
reviewed, and AEP's container and storage account do not change from run to run. So
`plan` starts Terraform at once, beside the IMS, AEP and identity round trips (about a
second on real services), instead of after them.

The guesses are checked, never trusted: once the credentials are in, the root is rendered
as always, and the plan ahead is kept only if rendering changed nothing on disk, init is not
needed and Terraform's auth pin is the one databricks-sdk resolved (the pin is guessed from
the configuration when that leaves one choice, so the SDK's import and host-metadata round
trip need not come first). Otherwise it is stopped as Ctrl-C would stop it (Terraform
releases its state lock) and the plan runs again. Its output is held back until it is kept,
so a stopped plan prints nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.console import BufferedConsole, Console
from provisioner.errors import ExitCode
from provisioner.run.warmup import in_thread
from provisioner.sas.modes import mode_of

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.identity import AuthPin
    from provisioner.render.root import RenderedRoot
    from provisioner.run.context import RunContext
    from provisioner.terraform import InitOptions, PlanOptions, TerraformRunner


@dataclass
class _Running:
    runner: TerraformRunner
    output: BufferedConsole
    outcome: Callable[[], ExitCode]  # waits for the plan
    stop: threading.Event
    pin: AuthPin  # the auth type Terraform was started with


class PlanAhead:
    """A plan of the root on disk, started early, or nothing when it could not be the one."""

    def __init__(self, running: _Running | None, init: InitOptions | None, resolved: Callable[[], AuthPin]) -> None:
        self._running = running
        self._init = init
        self._resolved = resolved

    @property
    def running(self) -> bool:
        """A plan is under way (so the root is initialised: its state can be read meanwhile)."""
        return self._running is not None

    def outcome_for(self, rendered: RenderedRoot, console: Console) -> ExitCode | None:
        """The plan's outcome (its output printed) when it was made on what this run would plan
        now — rendering changed nothing on disk, init is not needed and Terraform's auth pin
        is the one resolved; else None, the plan ahead stopped and gone (its lock released,
        no plan file left)."""
        running, self._running = self._running, None
        if running is None:
            return None
        if rendered.written or running.runner.init_needed(self._init) or running.pin != self._resolved():
            _stop(running)
            return None
        try:
            return running.outcome()
        finally:
            running.output.flush_to(console)

    def discard(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            _stop(running)


def _stop(running: _Running) -> None:
    running.stop.set()
    try:
        running.outcome()
    except BaseException:  # whatever it met, nothing of it is used
        return


@contextmanager
def plan_ahead(ctx: RunContext, env: Environment, opts: PlanOptions, init: InitOptions | None) -> Iterator[PlanAhead]:
    """Start planning the root on disk unless it cannot be the plan this run makes (inline
    mode: the token is a plan input; a root never rendered; one that needs init). Whatever
    is not taken with `outcome_for` is stopped on the way out."""
    ahead = PlanAhead(_start(ctx, env, opts, init), init, lambda: ctx.auth_pin(env))
    try:
        yield ahead
    finally:
        ahead.discard()


def _start(ctx: RunContext, env: Environment, opts: PlanOptions, init: InitOptions | None) -> _Running | None:

    if mode_of(env).token_in_terraform or not any(env.root_dir.glob("*.tf")):
        return None
    # Guessed from the configuration when it leaves one choice: the SDK's resolution (an import
    # and the host-metadata round trip) then overlaps Terraform's start too.
    pin = ctx.predicted_auth_pin(env) or ctx.auth_pin(env)
    output = BufferedConsole(color=ctx.console.color)
    runner = ctx.runner(env, None, output, identity=pin)
    if runner.init_needed(init):
        return None
    stop, started = threading.Event(), threading.Event()
    runner.stop, runner.started = stop, started

    def plan() -> ExitCode:
        try:
            return runner.plan(opts)
        finally:
            started.set()  # also when it failed before Terraform started

    outcome = in_thread(plan, f"plan-ahead-{env.name}")
    # The caller's next steps (imports, threads) would compete for the interpreter with the
    # few milliseconds that start Terraform: let those come first.
    started.wait()
    return _Running(runner, output, outcome, stop, pin)
