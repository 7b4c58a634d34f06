"""A small Terraform runner modelled on hashicorp/terraform-exec (see process.py for why not python-terraform).

The names below load with their module on first use (PEP 562): `provision` imports the keeper's
modules (early.py, guard.py) before anything else, and importing this package must not load
the rest of it first (provisioner/run/early.py).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provisioner.terraform.apply import Applied as Applied
    from provisioner.terraform.apply import ApplyOptions as ApplyOptions
    from provisioner.terraform.apply import apply_saved as apply_saved
    from provisioner.terraform.binary import TerraformBinary as TerraformBinary
    from provisioner.terraform.binary import find_terraform as find_terraform
    from provisioner.terraform.environment import ChildEnv as ChildEnv
    from provisioner.terraform.environment import build_child_env as build_child_env
    from provisioner.terraform.init import InitOptions as InitOptions
    from provisioner.terraform.plan import PlanOptions as PlanOptions
    from provisioner.terraform.plan import saved_plan as saved_plan
    from provisioner.terraform.state import TerraformState as TerraformState
    from provisioner.terraform.terraform import (
        TerraformRunner as TerraformRunner,
    )
    from provisioner.terraform.terraform import (
        create_empty_state as create_empty_state,
    )
    from provisioner.terraform.terraform import (
        plan_and_apply as plan_and_apply,
    )
    from provisioner.terraform.terraform import (
        read_state as read_state,
    )

# name -> the module of this package it lives in
_HOMES = {
    "Applied": "apply",
    "ApplyOptions": "apply",
    "apply_saved": "apply",
    "TerraformBinary": "binary",
    "find_terraform": "binary",
    "ChildEnv": "environment",
    "build_child_env": "environment",
    "InitOptions": "init",
    "PlanOptions": "plan",
    "saved_plan": "plan",
    "TerraformState": "state",
    "TerraformRunner": "terraform",
    "create_empty_state": "terraform",
    "plan_and_apply": "terraform",
    "read_state": "terraform",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
