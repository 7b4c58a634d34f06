"""Find the terraform (or OpenTofu `tofu`) binary and check its version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from provisioner.errors import TerraformError

MIN_VERSION = (1, 5, 0)
_VERSION_RE = re.compile(r"(Terraform|OpenTofu) v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class TerraformBinary:
    path: str
    version: tuple[int, int, int]
    flavor: str  # "terraform" or "tofu"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def find_terraform(environ: Mapping[str, str] | None = None) -> TerraformBinary:
    """TERRAFORM_BINARY if set, else `terraform` then `tofu` on PATH; at least 1.5."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("TERRAFORM_BINARY")
    if explicit:
        path = shutil.which(explicit, path=environ.get("PATH"))
        if path is None:
            raise TerraformError(
                f"TERRAFORM_BINARY={explicit}: not found or not executable — point it at a terraform >= 1.5 binary"
            )
    else:
        path = shutil.which("terraform", path=environ.get("PATH")) or shutil.which("tofu", path=environ.get("PATH"))
        if path is None:
            raise TerraformError(
                "terraform not found on PATH — install Terraform >= 1.5 (or OpenTofu) or set TERRAFORM_BINARY"
            )
    return _probe(path)


def _probe(path: str) -> TerraformBinary:
    try:
        out = subprocess.run(
            [path, "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1", "HOME": os.environ.get("HOME", "/")},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TerraformError(
            f"{path}: cannot run `version` ({type(exc).__name__}) — is it a terraform binary?"
        ) from None
    match = _VERSION_RE.search(out.stdout)
    if match is None:
        raise TerraformError(f"{path}: `version` printed no Terraform/OpenTofu version — is it a terraform binary?")
    flavor = "tofu" if match.group(1) == "OpenTofu" else "terraform"
    version = (int(match.group(2)), int(match.group(3)), int(match.group(4)))
    if version < MIN_VERSION:
        raise TerraformError(
            f"{path}: version {'.'.join(map(str, version))} is too old — dlz-provisioner needs >= 1.5.0; upgrade it"
        )
    return TerraformBinary(path, version, flavor)
