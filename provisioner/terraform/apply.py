"""`terraform apply <saved plan>` — what was shown is what is applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApplyOptions:
    # None: plan and apply in one process, without a prompt (`provision rotate`, which has
    # asked before the point of no return and must not spend a second process start).
    plan_file: Path | None
    lock_timeout: str = "0s"


def apply_args(opts: ApplyOptions) -> list[str]:
    # A saved plan carries its variables; passing any again would be refused (and Terraform
    # would print both values of a sensitive variable in the refusal).
    args = ["apply", "-input=false", "-no-color", f"-lock-timeout={opts.lock_timeout}"]
    return [*args, str(opts.plan_file)] if opts.plan_file is not None else [*args, "-auto-approve"]
