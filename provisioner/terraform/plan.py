"""`terraform plan -out`, with -detailed-exitcode mapped to a result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class PlanOutcome(enum.IntEnum):
    """Terraform's -detailed-exitcode, which is also ours."""

    NO_CHANGES = 0
    ERROR = 1
    CHANGES = 2


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


def plan_outcome(returncode: int) -> PlanOutcome:
    if returncode in (0, 2):
        return PlanOutcome(returncode)
    return PlanOutcome.ERROR
