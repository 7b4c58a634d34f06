"""`TerraformRunner`: every command of this package on one object (terraform-exec's `Terraform`),
and the sequences of commands callers compose (plan and apply; init and read the state).

Each command's options, argument builder and method live in its own file (init.py, plan.py,
apply.py, show.py, state.py); runner.py only executes. A new command: a file with its options
dataclass, `<name>_args()` and a mixin class holding the method, then one more base here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from provisioner.errors import ExitCode, TerraformError
from provisioner.terraform.apply import Applied, Apply, apply_saved
from provisioner.terraform.init import Init
from provisioner.terraform.plan import Plan, PlanOptions, saved_plan
from provisioner.terraform.show import Show
from provisioner.terraform.state import StatePull, StatePush, StateRm, TerraformState, read_local_state


class TerraformRunner(Init, Plan, Apply, Show, StatePull, StatePush, StateRm):
    """One root, one binary, one explicit environment (see runner.Runner)."""


def plan_and_apply(runner: TerraformRunner, plan: PlanOptions, confirm: Callable[[], bool]) -> Applied:
    """plan -out → (when there are changes) confirm → apply exactly that plan → remove it.

    The runner must be initialised. `confirm` is asked only when the plan changes something;
    the plan file is removed in every case.
    """
    with saved_plan(runner, plan) as outcome:
        if outcome is ExitCode.NO_CHANGES:
            return Applied.NO_CHANGES
        return apply_saved(runner, plan.out, confirm, plan.lock_timeout)


def read_state(runner: TerraformRunner, *, init: bool = True) -> TerraformState:
    """The root's state as it is now; empty for a root that was never rendered (nothing managed).

    `init` first (skipped when already done): a fresh CI checkout with a remote backend needs
    it to reach the state. Give the runner a quiet console where Terraform's chatter is noise.
    """
    if not runner.root.is_dir() or not any(runner.root.glob("*.tf")):
        return TerraformState()
    if init:
        runner.init()
    local = read_local_state(runner.root, runner.env.values)  # no Terraform start for a local backend
    return local if local is not None else TerraformState(runner.state_pull())


def create_empty_state(runner: TerraformRunner, lock_timeout: str = "2m") -> bool:
    """Give a remote backend an (empty) state for this root if it has none; True if created.

    Terraform's `pg` backend (1.11; remote-state/pg/client.go) locks a state that has no row
    yet with one database-wide advisory lock (-1, "workspace creation") and holds it for the
    whole plan or apply — the default workspace's row is only written when state is first
    persisted. Until then every other environment sharing the database is refused ("Already
    locked for workspace creation"), however distinct its schema. Writing an empty state once,
    right after init, holds that lock for milliseconds; from then on each environment locks
    only its own row. `lock_timeout` bounds the wait for another root doing the same.
    """
    import tempfile  # here: only a pg backend's first init writes a state (uuid imports platform)
    import uuid

    # With no state, `state pull` prints an empty document whose lineage is "" (pg, 1.11).
    if runner.state_pull().get("lineage"):
        return False
    doc = {
        "version": 4,
        "terraform_version": "1.5.0",  # the oldest we support: any newer Terraform reads it
        "serial": 0,
        "lineage": str(uuid.uuid4()),
        "outputs": {},
        "resources": [],
    }
    fd, tmp = tempfile.mkstemp(prefix="empty-", suffix=".tfstate", dir=runner.root / ".terraform")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        try:
            runner.state_push(Path(tmp), lock_timeout)
        except TerraformError:
            if runner.state_pull().get("lineage"):  # another run of this root created it first: as good
                return False
            raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True
