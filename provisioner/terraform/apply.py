"""`terraform apply <saved plan>` — what was shown is what is applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApplyOptions:
    plan_file: Path
    lock_timeout: str = "0s"


def apply_args(opts: ApplyOptions) -> list[str]:
    # A saved plan carries its variables; passing any again would be refused (and Terraform
    # would print both values of a sensitive variable in the refusal).
    return ["apply", "-input=false", "-no-color", f"-lock-timeout={opts.lock_timeout}", str(opts.plan_file)]
