"""`terraform show -json` of a saved plan or of the state: the machine-readable truth."""

from __future__ import annotations

from pathlib import Path


def show_args(plan_file: Path | None = None) -> list[str]:
    args = ["show", "-json", "-no-color"]
    if plan_file is not None:
        args.append(str(plan_file))
    return args
