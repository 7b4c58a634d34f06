"""`terraform show -json` of a saved plan or of the state: the machine-readable truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioner.terraform.runner import Runner


def show_args(plan_file: Path | None = None) -> list[str]:
    args = ["show", "-json", "-no-color"]
    if plan_file is not None:
        args.append(str(plan_file))
    return args


class Show(Runner):
    def show_json(self, plan_file: Path | None = None) -> dict[str, Any]:
        """The plan (or, without a file, the state) as JSON. Holds secrets: never print it."""
        return self.run_json(show_args(plan_file), "show -json")
