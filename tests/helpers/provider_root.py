"""A Terraform root on the sandbox's stand-in provider, for the tests that drive it with the real
terraform binary (test_provider*.py): write HCL, init offline through the sandbox's mirror,
run terraform, read the local state."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from provisioner.sandbox import Sandbox
from tests.helpers.config import REPO, WORKSPACE_HOST
from tests.helpers.sandbox import sandbox_pat
from tests.helpers.zygote import forked_providers

SAS = "sv=2020-10-02&sr=c&sp=racwdlm&sig=abc%2Fdef%3D"

HEADER = f"""
terraform {{
  required_providers {{
    databricks = {{ source = "databricks/databricks", version = "~> 1.99" }}
  }}
}}
provider "databricks" {{
  host = "{WORKSPACE_HOST}"
}}
"""


def cluster_hcl(spark_conf: str = "", extra: str = "") -> str:
    return f"""
resource "databricks_cluster" "c" {{
  cluster_name  = "dlz"
  spark_version = "15.4.x-scala2.12"
  node_type_id  = "Standard_DS3_v2"
  num_workers   = 1
  spark_conf = {{ {spark_conf} }}
  {extra}
}}
"""


SECRET_HCL = """
variable "sas" {
  type      = string
  sensitive = true
}
resource "databricks_secret_scope" "s" {
  name = "dlz"
}
resource "databricks_secret" "sas" {
  scope        = databricks_secret_scope.s.name
  key          = "sas"
  string_value = var.sas
}
"""


class Root:
    """One Terraform root dir plus the environment of a sandbox run."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.mkdir()

    def write(self, hcl: str) -> None:
        (self.path / "main.tf").write_text(HEADER + hcl)
        if not (self.path / ".terraform").exists():
            self.tf("init")  # offline: only the sandbox mirror can provide databricks/databricks

    def tf(self, *args: str, ok: tuple[int, ...] = (0,), **env: Any) -> subprocess.CompletedProcess[str]:
        started = time.perf_counter()
        proc = subprocess.run(
            ["terraform", args[0], "-no-color", "-input=false", *args[1:]],
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(f"terraform {args[0]:<8} {time.perf_counter() - started:5.2f}s  rc={proc.returncode}")
        assert proc.returncode in ok, proc.stdout + proc.stderr
        return proc

    def apply(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.tf("apply", "-auto-approve", ok=(0,), **env)

    def plan_rc(self, **env: str) -> tuple[int, str]:
        proc = self.tf("plan", "-detailed-exitcode", ok=(0, 2), **env)
        return proc.returncode, proc.stdout

    def state_attr(self, address: str, name: str) -> object:
        """An attribute of a resource in the (local) state file."""
        state = json.loads((self.path / "terraform.tfstate").read_text())
        for resource in state["resources"]:
            if f"{resource['type']}.{resource['name']}" == address:
                return resource["instances"][0]["attributes"][name]
        raise AssertionError(f"{address} not in state")


def root_env(sandbox: Sandbox) -> dict[str, str]:
    # A clean environment: no caller TF_* variable may inject flags or another CLI config
    # (this machine sets TF_CLI_CONFIG_FILE to a file that does not exist).
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        sandbox.terraform_env(),
        TF_IN_AUTOMATION="1",
        DATABRICKS_TOKEN=sandbox_pat(sandbox),  # the env fallback, as for real
        TF_VAR_sas=SAS,
    )
    if not installed_from_here():
        # The provider runs as `python -m provisioner.sandbox.provider`: from a source
        # checkout the package must be importable by that interpreter.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env.update(forked_providers())  # with PYTHONPATH set, the zygote refuses: started after all
    return env


@functools.cache
def installed_from_here() -> bool:
    """Whether a fresh interpreter imports `provisioner` from this checkout (an editable install)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import provisioner; print(provisioner.__file__)"
    found = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True).stdout
    return bool(found) and Path(found.strip()).resolve().is_relative_to(REPO)
