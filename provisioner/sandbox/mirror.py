"""The filesystem mirror and Terraform CLI config that install the stand-in provider.

Terraform finds `registry.terraform.io/databricks/databricks` 1.99.0 in
`<state_dir>/mirror` (unpacked layout) and nowhere else, so `terraform init` works
offline. The mirrored executable is a two-line launcher naming no path of this machine:
its hash, and so `.terraform.lock.hcl`, is the same everywhere; the interpreter comes
from PROVISION_SANDBOX_PYTHON in the environment returned here: the one the user set, else
the one running `provision`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

from provisioner.sandbox.files import atomic_write
from provisioner.sandbox.provider import MIRRORED_VERSION, PYTHON_ENV, SCHEMA_CACHE_ENV, server_command

SOURCE = "registry.terraform.io/databricks/databricks"
EXECUTABLE = f"terraform-provider-databricks_v{MIRRORED_VERSION}"
# What Terraform prints at every plan and apply while dev_overrides are set (-no-color).
# (terraform internal/command/meta_providers.go, providerDevOverrideRuntimeWarnings): its summary
# and the last line of its body.
DEV_OVERRIDES_WARNING = ("Warning: Provider development overrides are in effect", "releases.")

# The launcher runs the stand-in on the interpreter PYTHON_ENV names (build_mirror).
# `:?` makes a run outside a sandbox fail with a message instead of "exec: : not found".
LAUNCHER = (
    "#!/bin/sh\n"
    f'exec "${{{PYTHON_ENV}:?not set: run through provision --sandbox}}" '
    '-m provisioner.sandbox.provider "$@"\n'
)

# Terraform's keeper (provisioner/terraform/guard.py, PROVIDER_SERVER_ENV) starts this command
# (provider/__init__.py `server_command`: what the launcher runs, serving) before each
# Terraform command that uses providers, and Terraform reattaches every provider instance of
# that command to it: one stand-in process per command instead of one per instance (three per
# plan). Raw `terraform`, which has no keeper, starts the launcher as before.
# The name is the keeper's; the sandbox does not import the product (tests/sandbox/test_standalone.py).
PROVIDER_SERVER_ENV = "PROVISION_PROVIDER_SERVER"

_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def terraform_platform() -> str:
    """Terraform's name for this machine's platform, e.g. `linux_amd64`, `darwin_arm64`."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    if system not in ("linux", "darwin") or machine not in _ARCHES:
        raise RuntimeError(f"the sandbox provider mirror does not support {system}/{machine}")
    return f"{system}_{_ARCHES[machine]}"


def cli_config(mirror_dir: Path) -> str:
    """Init installs the stand-in from the mirror; every other command takes it from the
    `dev_overrides` directory and so ignores the lock file's entry for it (Terraform's CLI
    config docs, "Development Overrides for Provider Developers") — a root's committed lock
    file of the real provider then neither blocks nor changes a sandbox run."""
    launcher_dir = mirror_dir / SOURCE / MIRRORED_VERSION / terraform_platform()
    # json.dumps quotes a path the way HCL string literals want it.
    return (
        "provider_installation {\n"
        "  dev_overrides {\n"
        f"    {json.dumps(SOURCE)} = {json.dumps(str(launcher_dir))}\n"
        "  }\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror_dir))}\n"
        f'    include = ["{SOURCE}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{SOURCE}"]\n'
        "  }\n"
        "}\n"
    )


def _write_if_changed(path: Path, content: str, mode: int) -> None:
    """Rewrite only on a difference, atomically: concurrent runs may share a state dir."""
    if path.exists() and path.read_text() == content:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, content, mode=mode)


def package_hash() -> str:
    """The `h1:` hash Terraform records for the mirrored package (its "dirhash" Hash1).

    Hash1 (golang.org/x/mod/sumdb/dirhash, as Terraform's getproviders.PackageHashV1 uses it)
    is the base64 SHA-256 of the lines `<sha256 hex>  <relative path>` of the package's files,
    sorted by path. The package is the launcher alone, the same on every platform.
    """
    line = f"{hashlib.sha256(LAUNCHER.encode()).hexdigest()}  {EXECUTABLE}\n"
    return "h1:" + base64.b64encode(hashlib.sha256(line.encode()).digest()).decode()


def lock_file(constraint: str) -> str:
    """`.terraform.lock.hcl` exactly as `terraform init` writes it for the mirrored provider.

    A filesystem mirror carries no signed checksums, so a root's first init records only the
    local `h1:` hash and prints "Incomplete lock file information for providers". Terraform
    keeps quiet when the lock file already holds that hash (init then leaves it unchanged),
    and the launcher is identical on every platform, so this file is complete everywhere.
    """
    return (
        '# This file is maintained automatically by "terraform init".\n'
        "# Manual edits may be lost in future updates.\n"
        "\n"
        f'provider "{SOURCE}" {{\n'
        f'  version     = "{MIRRORED_VERSION}"\n'
        f"  constraints = {json.dumps(constraint)}\n"
        "  hashes = [\n"
        f'    "{package_hash()}",\n'
        "  ]\n"
        "}\n"
    )


def build_mirror(state_dir: Path) -> dict[str, str]:
    """Build (or check) the mirror and CLI config; return the environment Terraform needs."""
    state_dir = Path(state_dir).resolve()
    mirror_dir = state_dir / "mirror"
    launcher = mirror_dir / SOURCE / MIRRORED_VERSION / terraform_platform() / EXECUTABLE
    _write_if_changed(launcher, LAUNCHER, 0o755)
    config = state_dir / "terraform.rc"
    _write_if_changed(config, cli_config(mirror_dir), 0o644)
    server = server_command(os.environ, sys.executable)
    return {
        "TF_CLI_CONFIG_FILE": str(config),
        "CHECKPOINT_DISABLE": "1",
        PYTHON_ENV: server[0],
        SCHEMA_CACHE_ENV: str(state_dir / "provider-schema"),
        # The keeper's format: one argument per line. An interpreter whose path holds a newline
        # gets no server, and Terraform starts its providers itself.
        **({PROVIDER_SERVER_ENV: "\n".join(server)} if "\n" not in server[0] else {}),
    }
