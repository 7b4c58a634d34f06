"""Find the terraform (or OpenTofu `tofu`) binary and check its version."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
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
    return _probe_once(path)


# `terraform version` is a process start; open_context() starts it in the background at once
# (prefetch) and the runner's later call joins it instead of probing again.
_probe_lock = threading.Lock()
_probed: dict[tuple[str, int, int], TerraformBinary] = {}


def _probe_once(path: str) -> TerraformBinary:
    with _probe_lock:
        try:
            st = os.stat(path)
            key = (path, st.st_mtime_ns, st.st_size)  # a binary replaced in place is probed again
        except OSError:
            return _probe(path)
        if key not in _probed:
            _probed[key] = _probe(path)  # failures raise and are not remembered
        return _probed[key]


def prefetch(environ: Mapping[str, str]) -> None:
    """Probe the binary in a daemon thread; errors surface later, from the real call."""

    def probe() -> None:
        with contextlib.suppress(Exception):  # reported by the caller that needs the binary
            find_terraform(environ)

    threading.Thread(target=probe, name="terraform-probe", daemon=True).start()


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
