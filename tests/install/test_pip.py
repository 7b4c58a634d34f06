"""The wheel goes into a fresh venv with pip; the installed `provision` then runs every command
from a directory that is not the checkout, on the sandbox, with the real terraform: the
templates, the JSON schema and the stand-in provider must all come from the installed package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers.install import clean_env, run, walk
from tests.helpers.project import Project

# The fresh install downloads its dependencies (or takes them from pip's cache).
pytestmark = [pytest.mark.timeout(1200), pytest.mark.long]


def test_a_wheel_installed_with_pip_in_a_fresh_venv_runs_every_command(
    dist: Path, project: Project, tmp_path: Path
) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    env = clean_env(project)
    made = run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    installed = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    walk(venv / "bin" / "provision", project)
