"""Installed the way users install a CLI, not `pip install -e` from a clone.

`python -m build` makes the sdist and wheel (and `twine check` accepts both); the wheel goes
into a fresh venv with pip, the source tree into a fresh pipx home. Each installed `provision`
then runs every command from a directory that is not the checkout, on the sandbox, with the
real terraform: the templates, the JSON schema and the stand-in provider must all come from
the installed package. Slow (a fresh venv installs every dependency), so one module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from provisioner.main import COMMANDS
from tests.helpers.config import REPO
from tests.helpers.project import Project

BIN = Path(sys.executable).parent
# The fresh installs download their dependencies (or take them from pip's cache).
pytestmark = pytest.mark.timeout(1200)


def _clean_env(project: Project) -> dict[str, str]:
    """The project's environment without anything that would import the checkout instead."""
    env = project.env()
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(key, None)
    return env


def _run(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist + wheel of a copy of the tracked tree (the build must not need anything untracked)."""
    src = tmp_path_factory.mktemp("src")
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "deprecated" not in built.stdout + built.stderr, "the build warns: " + built.stderr[-2000:]
    return out


def test_build_and_twine_check_pass_and_the_wheel_carries_the_templates(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    checked = _run([str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)], dist, os.environ)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(p.name for p in (REPO / "templates").glob("*.j2"))
    assert templates and all(f"provisioner/templates/{t}" in names for t in templates)
    assert "provisioner/config/provision.schema.json" in names
    assert not [n for n in names if n.startswith(("tests/", "templates/")) or "/share/" in n]


def _walk(provision: Path, project: Project) -> None:
    """Every command, as README's walk runs them, through the installed console script."""
    env = _clean_env(project)
    for name in COMMANDS:
        helped = _run([str(provision), name, "--help"], project.dir, env)
        assert helped.returncode == 0, f"{name} --help: {helped.stderr}"

    def provision_(*args: str, expect: int | tuple[int, ...] = 0) -> subprocess.CompletedProcess[str]:
        done = _run([str(provision), *args, "--sandbox"], project.dir, env, timeout=300)
        expected = (expect,) if isinstance(expect, int) else expect
        assert done.returncode in expected, f"provision {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done

    provision_("render")
    assert (project.root() / "clusters.tf").is_file()
    provision_("render", "--check")
    provision_("plan", expect=2)
    provision_("apply", "--auto-approve")
    provision_("plan")
    provision_("status")
    provision_("verify")
    provision_("credentials")
    provision_("rotate", "--auto-approve")
    provision_("sandbox", "expire")
    provision_("rotate", "--if-expiring-within", "7", "--auto-approve")
    provision_("connect")
    provision_("envs", "--json")
    provision_("plan", "--summary", "plan.json")
    provision_("summary", "merge", "plan.json", "--out", "comment.md")
    provision_("destroy", "--auto-approve")
    # adopt needs a cluster made outside the tool; it imports through the same templates.
    assert not (project.dir / "provisioner").exists()


def test_a_wheel_installed_with_pip_in_a_fresh_venv_runs_every_command(
    dist: Path, project: Project, tmp_path: Path
) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    env = _clean_env(project)
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    _walk(venv / "bin" / "provision", project)


def test_pipx_install_of_the_source_tree_runs_every_command(project: Project, tmp_path: Path) -> None:
    env = _clean_env(project)
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
    installed = _run([str(BIN / "pipx"), "install", "--python", sys.executable, str(src)], tmp_path, env)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    _walk(tmp_path / "bin" / "provision", project)
