"""What a command starts before its own modules load: Terraform's keeper and, under the
sandbox, the stand-in provider's server (provisioner/terraform/early.py `EarlyKeeper`).

Before its first Terraform run `provision` loads its modules, reads provision.yaml and opens
the target (~100 ms); Terraform then waits for the provider server's start (an interpreter,
gRPC and the stand-in's modules, ~100 ms more). Started here, the server loads beside
`provision` instead of after it (bench/NOTES.md, "The provider server started early").

This is part of the seam to the sandbox (run/target.py): the one place that names the
sandbox's server before its target exists. It is a guess the keeper checks against the
environment the target then gives Terraform (guard.py): a wrong one costs a process, never a
result.
"""

from __future__ import annotations

import os
import sys

from provisioner.sandbox.provider import server_command
from provisioner.terraform.early import EarlyKeeper


def start_keeper(*, sandbox: bool) -> EarlyKeeper:
    """The keeper for the command's first Terraform run with providers, with the sandbox's
    provider server under `sandbox` (a target on real services names none)."""
    return EarlyKeeper.start(server_command(os.environ, sys.executable) if sandbox else None, os.environ)
