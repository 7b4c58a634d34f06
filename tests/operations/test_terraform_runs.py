"""Each command reads the Terraform state once (issue 24): counted in real Terraform runs.

A shim on TERRAFORM_BINARY records every command line and hands it to the real binary, so
what is counted is what the tool started, against real roots and the sandbox. A `state pull`
costs a Terraform start-up and the backend (~0.3 s, ~0.25 CPU-s): a command reads the state
once before its work and once more only after an apply that wrote it (new cluster ids), never
again for a later step (the repoint, converge, the closing probe, the connections check).
"""

from __future__ import annotations

import shlex
import shutil
from collections import Counter
from pathlib import Path

from tests.helpers.project import Project


def _shim(project: Project) -> tuple[Path, Path]:
    """The shim's path and the log it appends one line per Terraform run to."""
    log = project.dir / "terraform-runs.log"
    shim = project.dir / "shim" / "terraform"
    if shim.exists():
        return shim, log
    real = shutil.which("terraform")
    assert real is not None
    shim.parent.mkdir()
    shim.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\nexec {shlex.quote(real)} "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)
    return shim, log


def _runs(project: Project, *args: str) -> Counter[str]:
    """Terraform commands one CLI run started (`state pull`, `plan`, …), `version` (the binary's
    probe, remembered per machine) aside."""
    shim, log = _shim(project)
    log.unlink(missing_ok=True)
    done = project.run(*args, env=project.env(TERRAFORM_BINARY=str(shim)))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    words = [line.split() for line in lines]
    counted = Counter(" ".join(w[:2]) if w[:1] == ["state"] else w[0] for w in words if w)
    del counted["version"]
    return counted


def test_secret_scope_commands_read_the_state_once(project: Project) -> None:
    first = _runs(project, "apply", "--auto-approve")
    # Before the work one read; after the apply one more (the clusters' new ids). The scope is
    # created alone first (apply -target), then the rest re-planned and compared: 2 plans, 2 shows.
    assert first == Counter({"init": 1, "state pull": 2, "plan": 2, "show": 2, "apply": 2}), first

    steady = _runs(project, "apply", "--auto-approve")
    # Nothing to apply: the plan's own prior state serves the secret check, the repoint,
    # converge and the closing probe.
    assert steady == Counter({"state pull": 1, "plan": 1}), steady

    assert _runs(project, "verify") == Counter({"state pull": 1})
    assert _runs(project, "status", "--probe") == Counter({"state pull": 1})

    rotated = _runs(project, "rotate", "--auto-approve")
    # The closing probe takes the clusters the rotation converged; the refresh-only apply after
    # the window changes no id.
    assert rotated == Counter({"state pull": 1, "apply": 1}), rotated


def test_inline_apply_reads_the_state_before_and_once_after_a_change(project: Project) -> None:
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    first = _runs(project, "apply", "--auto-approve")
    assert first == Counter({"init": 1, "state pull": 2, "plan": 1, "apply": 1}), first
    steady = _runs(project, "apply", "--auto-approve")
    assert steady == Counter({"state pull": 1, "plan": 1}), steady
