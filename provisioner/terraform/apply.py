"""`terraform apply <saved plan>`: what was shown is what is applied (the sequence every
changing command follows, plan -out → confirm → apply → remove, is terraform.plan_and_apply)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provisioner.terraform.runner import Runner


@dataclass(frozen=True)
class ApplyOptions:
    # None: plan and apply in one process, without a prompt (`provision rotate`, which has
    # asked before the point of no return and must not spend a second process start).
    plan_file: Path | None
    lock_timeout: str = "0s"
    # Only without a saved plan: a first secret_scope apply creates the scope alone first.
    targets: tuple[str, ...] = ()
    # Only without a saved plan: write what the provider reads into state, change nothing.
    refresh_only: bool = False


def apply_args(opts: ApplyOptions) -> list[str]:
    # A saved plan carries its variables; passing any again would be refused (and Terraform
    # would print both values of a sensitive variable in the refusal).
    args = ["apply", "-input=false", "-no-color", f"-lock-timeout={opts.lock_timeout}"]
    if opts.plan_file is not None:
        return [*args, str(opts.plan_file)]
    args += [f"-target={t}" for t in opts.targets]
    if opts.refresh_only:
        args.append("-refresh-only")
    return [*args, "-auto-approve"]


class Apply(Runner):
    def apply(self, opts: ApplyOptions) -> None:
        self.run(apply_args(opts), "apply")


class Applied(enum.Enum):
    NO_CHANGES = "no changes"
    APPLIED = "applied"
    DECLINED = "declined"


def apply_saved(runner: Apply, plan_file: Path, confirm: Callable[[], bool], lock_timeout: str = "0s") -> Applied:
    """confirm → apply `plan_file` → remove it (applied or refused, it holds the token).

    Declined, the file is left alone: it may be the user's own `provision plan --out`.
    """
    if not confirm():
        return Applied.DECLINED
    try:
        runner.apply(ApplyOptions(plan_file=plan_file, lock_timeout=lock_timeout))
    finally:
        plan_file.unlink(missing_ok=True)
    return Applied.APPLIED
