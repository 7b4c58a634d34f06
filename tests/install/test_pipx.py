"""The source tree goes into a fresh pipx home, which builds it; the installed `provision` then
runs every command from a directory that is not the checkout, on the sandbox, with the real
terraform."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.config import REPO
from tests.helpers.install import BIN, clean_env, run, walk
from tests.helpers.project import Project

# The fresh install downloads its dependencies (or takes them from pip's cache).
pytestmark = [pytest.mark.timeout(1200), pytest.mark.long]


def test_pipx_install_of_the_source_tree_runs_every_command(project: Project, tmp_path: Path) -> None:
    env = clean_env(project)
    env.update(
        {
            "PIPX_HOME": str(tmp_path / "pipx"),
            "PIPX_BIN_DIR": str(tmp_path / "bin"),
            "PIPX_MAN_DIR": str(tmp_path / "man"),
        }
    )
    src = tmp_path / "src"
    # A clean clone-like copy: pipx builds from the path it is given.
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.egg-info", "build", "dist", ".provision", ".terraform", "home", ".ci-venv"
        ),
    )
    installed = run([str(BIN / "pipx"), "install", "--python", sys.executable, str(src)], tmp_path, env)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    walk(tmp_path / "bin" / "provision", project)
