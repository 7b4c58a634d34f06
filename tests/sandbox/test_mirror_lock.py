"""The sandbox's lock file: complete (a newcomer's first run prints no "Incomplete lock file
information" warning), and never in the root, where a user commits the real provider's.

The mirror's lock file is what Terraform itself computes for the package: checked by letting
the real `terraform init` write one without our seed (and showing that it then warns). It lives
in the sandbox's init directory (provisioner/terraform/init.py); a root's own lock file — the
real provider's hashes, which the stand-in cannot match — is neither read nor written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from provisioner.render.root import PROVIDER_CONSTRAINT
from provisioner.sandbox import Sandbox
from provisioner.sandbox.mirror import lock_file, package_hash
from tests.helpers.project import Project

WARNING = "Incomplete lock file information for providers"


REAL_LOCK = (
    '# This file is maintained automatically by "terraform init".\n'
    "# Manual edits may be lost in future updates.\n\n"
    'provider "registry.terraform.io/databricks/databricks" {\n'
    '  version     = "1.128.0"\n'
    f"  constraints = {json.dumps(PROVIDER_CONSTRAINT)}\n"
    "  hashes = [\n"
    '    "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",\n'
    '    "zh:0000000000000000000000000000000000000000000000000000000000000000",\n'
    "  ]\n"
    "}\n"
)


def sandbox_lock(project: Project) -> Path:
    return Sandbox(project.sandbox_dir).init_dir(project.root()) / ".terraform.lock.hcl"


def test_first_plan_shows_no_lock_file_warning(project: Project) -> None:
    done = project.run("plan")
    assert done.returncode == 2, done.stderr
    assert WARNING not in done.stdout + done.stderr
    assert sandbox_lock(project).read_text() == lock_file(PROVIDER_CONSTRAINT)
    assert not (project.root() / ".terraform.lock.hcl").exists()  # nothing for the user to commit
    assert "development overrides" not in done.stdout  # the sandbox's own CLI config: not news


def test_a_committed_real_lock_file_is_left_alone_and_the_sandbox_works(project: Project) -> None:
    assert project.run("render").returncode == 0
    committed = project.root() / ".terraform.lock.hcl"
    committed.write_text(REAL_LOCK)
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    planned = project.run("plan")
    assert planned.returncode == 0, planned.stderr
    assert committed.read_text() == REAL_LOCK


def test_a_lock_file_an_older_sandbox_run_left_in_the_root_goes(project: Project) -> None:
    assert project.run("render").returncode == 0
    left = project.root() / ".terraform.lock.hcl"
    left.write_text(lock_file(PROVIDER_CONSTRAINT))
    assert project.run("plan").returncode == 2
    assert not left.exists()


def test_seeded_hash_is_the_one_terraform_computes(project: Project) -> None:
    assert project.run("render").returncode == 0
    assert project.run("plan").returncode == 2  # builds the mirror and its CLI config
    root = project.root()
    shutil.rmtree(root / ".terraform")
    sandbox_lock(project).unlink()
    mirror_only = project.dir / "mirror-only.rc"  # the sandbox's CLI config without its dev_overrides
    config = (project.sandbox_dir / "terraform.rc").read_text()
    mirror_only.write_text(re.sub(r"  dev_overrides \{[^}]*\}\n", "", config))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "HOME": str(project.dir / "home"),
        "TF_CLI_CONFIG_FILE": str(mirror_only),
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
    (root / ".terraform.lock.hcl").unlink()
    assert f'"{package_hash()}"' in written
    assert written == lock_file(PROVIDER_CONSTRAINT)
