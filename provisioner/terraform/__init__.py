"""A small Terraform runner modelled on hashicorp/terraform-exec (see process.py for why not python-terraform)."""

from provisioner.terraform.apply import ApplyOptions
from provisioner.terraform.binary import TerraformBinary, find_terraform
from provisioner.terraform.environment import ChildEnv, build_child_env
from provisioner.terraform.init import InitOptions
from provisioner.terraform.plan import PlanOptions, PlanOutcome
from provisioner.terraform.runner import TerraformRunner

__all__ = [
    "ApplyOptions",
    "ChildEnv",
    "InitOptions",
    "PlanOptions",
    "PlanOutcome",
    "TerraformBinary",
    "TerraformRunner",
    "build_child_env",
    "find_terraform",
]
