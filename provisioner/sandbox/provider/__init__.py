"""The stand-in `databricks/databricks` Terraform provider of the offline sandbox.

It speaks the real plugin protocol (through the PyPI package `tf`), exposes the real
provider's attribute names and types for the resources we generate, copies the real
provider's behaviour (see docs/sandbox.md) and talks HTTP to the workspace emulator
through databricks-sdk's `ApiClient` (client.py). Run as `python -m provisioner.sandbox.provider`.

Kept import-free: `mirror.py` imports this package just for the version, `provision`
imports it before its own modules load (provisioner/run/early.py), and Terraform starts the
provider several times per plan, so start-up cost matters.
"""

from __future__ import annotations

from collections.abc import Mapping

# The real provider version whose schema the stand-in mirrors (real_schema.json).
MIRRORED_VERSION = "1.99.0"

# Where provider processes keep their schema answer (schema_cache.py), set by mirror.build_mirror.
SCHEMA_CACHE_ENV = "PROVISION_SANDBOX_SCHEMA_CACHE"

# The argument that makes a provider process serve every instance of one Terraform command
# (`__main__.serve_one_command`), as Terraform's keeper starts it (mirror.PROVIDER_SERVER_ENV).
SERVE_ONE_COMMAND = "--serve-one-command"

# With SERVE_ONE_COMMAND: the server was started before its environment was known (Terraform's
# keeper started early, provisioner/terraform/guard.py, whose name this is too) and reads its
# directory and environment from stdin before it serves (`__main__.read_environ`).
ENVIRON_ON_STDIN = "--environ-on-stdin"

# The interpreter the stand-in runs on: the one the user set, else the one running `provision`.
PYTHON_ENV = "PROVISION_SANDBOX_PYTHON"


def server_command(environ: Mapping[str, str], python: str) -> list[str]:
    """The command that serves one Terraform command's provider instances; `python` is the
    interpreter running `provision`."""
    return [environ.get(PYTHON_ENV) or python, "-m", __name__, SERVE_ONE_COMMAND]
