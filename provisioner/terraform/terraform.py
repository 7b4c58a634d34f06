"""`TerraformRunner`: every command of this package on one object (terraform-exec's `Terraform`).

Each command's options, argument builder and method live in its own file (init.py, plan.py,
apply.py, show.py, state.py); runner.py only executes. A new command: a file with its options
dataclass, `<name>_args()` and a mixin class holding the method, then one more base here.
"""

from __future__ import annotations

from provisioner.terraform.apply import Apply
from provisioner.terraform.init import Init
from provisioner.terraform.plan import Plan
from provisioner.terraform.show import Show
from provisioner.terraform.state import StatePull, StatePush, StateRm


class TerraformRunner(Init, Plan, Apply, Show, StatePull, StatePush, StateRm):
    """One root, one binary, one explicit environment (see runner.Runner)."""
