"""`terraform plan -out`, with -detailed-exitcode mapped to a result; a saved plan's lifetime."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ExitCode
from provisioner.terraform.runner import Runner


@dataclass(frozen=True)
class PlanOptions:
    out: Path
    destroy: bool = False
    refresh: bool = True
    lock_timeout: str = "0s"
    targets: tuple[str, ...] = ()


def plan_args(opts: PlanOptions) -> list[str]:
    args = [
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        f"-out={opts.out}",
        f"-lock-timeout={opts.lock_timeout}",
    ]
    if opts.destroy:
        args.append("-destroy")
    if not opts.refresh:
        args.append("-refresh=false")
    args += [f"-target={t}" for t in opts.targets]
    return args


def plan_outcome(returncode: int) -> ExitCode:
    """-detailed-exitcode: 0 no changes, 2 changes, anything else an error."""
    if returncode in (ExitCode.NO_CHANGES, ExitCode.CHANGES):
        return ExitCode(returncode)
    return ExitCode.ERROR


class Plan(Runner):
    def plan(self, opts: PlanOptions) -> ExitCode:
        """ExitCode.NO_CHANGES or ExitCode.CHANGES; a failed plan raises and leaves no plan file."""
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        done = self.execute(plan_args(opts))
        outcome = plan_outcome(done.returncode)
        if outcome is ExitCode.ERROR:
            opts.out.unlink(missing_ok=True)
            raise self.failure("plan", done)
        return outcome


@contextmanager
def saved_plan(runner: Plan, opts: PlanOptions) -> Iterator[ExitCode]:
    """Plan into `opts.out` and remove the file on the way out, whatever happens.

    A saved plan holds the SAS token in clear: it lives only as long as the caller needs it
    (to show, confirm and apply it).
    """
    try:
        yield runner.plan(opts)
    finally:
        opts.out.unlink(missing_ok=True)
