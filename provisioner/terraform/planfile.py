"""Saved plans: reading one without starting Terraform; the files a killed run left behind.

A saved plan is a zip archive; its `tfstate` member is the prior state the plan was made
against (after refresh), in the ordinary state format (hashicorp/terraform
`internal/plans/planfile/reader.go`). Reading it costs milliseconds, where
`terraform show -json` starts every provider. The archive holds the SAS token like any
state: callers compare values in memory and print none.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from provisioner.terraform.state import TerraformState

PRIOR_STATE_MEMBER = "tfstate"


def prior_state(plan_file: Path) -> dict[str, Any] | None:
    """The state the plan was made against, or None when the file has none we can read."""
    import zipfile  # here: `plan` starts Terraform before it reads a plan file

    try:
        with zipfile.ZipFile(plan_file) as archive:
            raw = archive.read(PRIOR_STATE_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def planned_on(plan_file: Path) -> TerraformState:
    """The state the plan was made on, as a typed view (empty when the file holds none)."""
    return TerraformState(prior_state(plan_file))


# A plan made for one process's own use (`apply` without a saved plan): named by its pid.
_PER_PROCESS = re.compile(r"apply-(\d+)\.tfplan")


def per_process_plan(directory: Path, pid: int | None = None) -> Path:
    """The plan file one process makes and applies: another run of the same root never touches it."""
    return directory / f"apply-{os.getpid() if pid is None else pid}.tfplan"


def remove_abandoned_plans(directory: Path) -> list[Path]:
    """Delete the per-process plans whose process is gone (killed before it could): each holds
    the SAS token in inline mode. One whose process lives on (a concurrent run) is left alone."""
    removed = []
    for path in directory.glob("apply-*.tfplan"):
        match = _PER_PROCESS.fullmatch(path.name)
        if match is None:
            continue
        try:
            written = path.stat().st_mtime
        except OSError:
            continue
        if not alive_since(int(match.group(1)), written):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def alive_since(pid: int, written: float) -> bool:
    """Does process `pid` run, and is it the one that wrote a file at `written`? A process
    started after the file was written only reuses the pid of the one that did."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone's process: cannot tell, so it may be the writer
    started = _start_time(pid)
    return started is None or started <= written + 1.0


def _start_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), from /proc on Linux; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, in clock ticks since boot
    return boot + ticks / os.sysconf("SC_CLK_TCK")
