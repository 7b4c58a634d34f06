"""Reading a saved plan without starting Terraform.

A saved plan is a zip archive; its `tfstate` member is the prior state the plan was made
against (after refresh), in the ordinary state format (hashicorp/terraform
`internal/plans/planfile/reader.go`). Reading it costs milliseconds, where
`terraform show -json` starts every provider. The archive holds the SAS token like any
state: callers compare values in memory and print none.
"""

from __future__ import annotations

import json
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
