"""A small Terraform runner modelled on hashicorp/terraform-exec (see process.py for why not python-terraform)."""

from provisioner.terraform.apply import Applied, ApplyOptions, apply_saved
from provisioner.terraform.binary import TerraformBinary, find_terraform
from provisioner.terraform.environment import ChildEnv, build_child_env
from provisioner.terraform.init import InitOptions
from provisioner.terraform.plan import PlanOptions, saved_plan
from provisioner.terraform.state import TerraformState
from provisioner.terraform.terraform import TerraformRunner, create_empty_state, plan_and_apply, read_state

__all__ = [
    "Applied",
    "ApplyOptions",
    "ChildEnv",
    "InitOptions",
    "PlanOptions",
    "TerraformBinary",
    "TerraformRunner",
    "TerraformState",
    "apply_saved",
    "build_child_env",
    "create_empty_state",
    "find_terraform",
    "plan_and_apply",
    "read_state",
    "saved_plan",
]
