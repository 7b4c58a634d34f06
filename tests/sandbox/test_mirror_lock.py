"""A newcomer's first sandbox run prints no "Incomplete lock file information" warning.

The mirror's lock file is what Terraform itself computes for the package: checked by letting
the real `terraform init` write one without our seed (and showing that it then warns).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from provisioner.render.root import PROVIDER_CONSTRAINT
from provisioner.sandbox.mirror import lock_file, package_hash
from tests.conftest import Project

WARNING = "Incomplete lock file information for providers"


def test_first_plan_shows_no_lock_file_warning(project: Project) -> None:
    done = project.run("plan")
    assert done.returncode == 2, done.stderr
    assert WARNING not in done.stdout + done.stderr
    assert (project.root() / ".terraform.lock.hcl").read_text() == lock_file(PROVIDER_CONSTRAINT)


def test_seeded_hash_is_the_one_terraform_computes(project: Project) -> None:
    assert project.run("render").returncode == 0
    assert project.run("plan").returncode == 2  # builds the mirror and its CLI config
    root = project.root()
    shutil.rmtree(root / ".terraform")
    (root / ".terraform.lock.hcl").unlink()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "HOME": str(project.dir / "home"),
        "TF_CLI_CONFIG_FILE": str(project.sandbox_dir / "terraform.rc"),
        "PROVISION_SANDBOX_PYTHON": sys.executable,
        "CHECKPOINT_DISABLE": "1",
    }
    raw = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color", "-backend=false"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert raw.returncode == 0, raw.stderr
    assert WARNING in raw.stdout + raw.stderr  # what users saw before the seed
    written = (root / ".terraform.lock.hcl").read_text()
    assert f'"{package_hash()}"' in written
    assert written == lock_file(PROVIDER_CONSTRAINT)
