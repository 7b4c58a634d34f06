"""Each command reads the Terraform state once (issue 24): counted in real Terraform runs and
in the product's own reads.

A shim on TERRAFORM_BINARY records every command line and hands it to the real binary, so
what is counted is what the tool started, against real roots and the sandbox; a Python audit
hook in the `provision` process counts the state reads it makes itself (tests/helpers/
state_reads.py): these roots have a local backend, whose state file is read without starting
Terraform, so no `state pull` runs. A command reads the state once before its work and once
more only after an apply that wrote it (new cluster ids), never again for a later step (the
repoint, converge, the closing probe, the connections check).
"""

from __future__ import annotations

from collections import Counter

from tests.helpers.project import Project
from tests.helpers.state_reads import logged_terraform, run_counting_state_reads


def _runs(project: Project, *args: str) -> Counter[str]:
    """Terraform commands one CLI run started (`plan`, `state pull`, …), `version` (the binary's
    probe, remembered per machine) aside, and its own reads of the state file ("state read")."""
    terraform = logged_terraform(project.dir)
    terraform.log.unlink(missing_ok=True)
    done = run_counting_state_reads(project, *args, env=project.env(TERRAFORM_BINARY=str(terraform.binary)))
    assert done.returncode == 0, done.stdout + done.stderr
    words = [args.split() for _, args in terraform.runs()]
    counted = Counter(" ".join(w[:2]) if w[:1] == ["state"] else w[0] for w in words if w)
    del counted["version"]
    counted["state read"] = len(done.reads)
    return +counted  # without zero counts


def test_secret_scope_commands_read_the_state_once(project: Project) -> None:
    first = _runs(project, "apply", "--auto-approve")
    # Before the work one read; after the apply one more (the clusters' new ids). The scope is
    # created alone first (apply -target), then the rest re-planned and compared: 2 plans, 2 shows.
    assert first == Counter({"init": 1, "state read": 2, "plan": 2, "show": 2, "apply": 2}), first

    steady = _runs(project, "apply", "--auto-approve")
    # Nothing to apply: the plan's own prior state serves the secret check, the repoint,
    # converge and the closing probe.
    assert steady == Counter({"state read": 1, "plan": 1}), steady

    assert _runs(project, "verify") == Counter({"state read": 1})
    assert _runs(project, "status", "--probe") == Counter({"state read": 1})

    rotated = _runs(project, "rotate", "--auto-approve")
    # The closing probe takes the clusters the rotation converged; the refresh-only apply after
    # the window changes no id.
    assert rotated == Counter({"state read": 1, "apply": 1}), rotated


def test_inline_apply_reads_the_state_before_and_once_after_a_change(project: Project) -> None:
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    first = _runs(project, "apply", "--auto-approve")
    assert first == Counter({"init": 1, "state read": 2, "plan": 1, "apply": 1}), first
    steady = _runs(project, "apply", "--auto-approve")
    assert steady == Counter({"state read": 1, "plan": 1}), steady
