"""The SAS modes by name (`sas.mode` in provision.yaml), as pre-commit registers its languages."""

from __future__ import annotations

from provisioner.config.model import Environment
from provisioner.sas.inline import Inline
from provisioner.sas.mode import SasMode
from provisioner.sas.secret_scope import SecretScope

MODES: dict[str, SasMode] = {mode.name: mode for mode in (Inline(), SecretScope())}


def mode_of(env: Environment) -> SasMode:
    """The environment's mode (the schema allows only the names registered here)."""
    return MODES[env.sas.mode]
