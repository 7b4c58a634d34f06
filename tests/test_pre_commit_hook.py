"""`.pre-commit-hooks.yaml`: a repository runs `provision render --check` from pre-commit.

Real pre-commit on a sample repository whose config names this source tree as a local path
repository (no network for the hook itself: pre-commit clones the path and builds the hook's
venv with pip, as it would from GitHub), on the sandbox. The hook passes on a current root,
fails — naming the stale file — when provision.yaml changes without a render, and passes again
after `provision render`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.config import REPO
from tests.helpers.project import Project

BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.timeout(1200),  # the hook's venv installs every dependency
]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def init_repo(path: Path) -> None:
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    git(path, "config", "commit.gpgsign", "false")


def hook_repository(into: Path) -> str:
    """This source tree as a git repository at one commit (what `rev:` names)."""
    shutil.copytree(
        REPO,
        into,
        ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.egg-info", "build", "dist", ".provision", ".terraform", "home", ".ci-venv"
        ),
    )
    init_repo(into)
    git(into, "add", "-A")
    git(into, "commit", "-q", "-m", "hook under test")
    return git(into, "rev-parse", "HEAD")


def test_the_shipped_hook_runs_render_check_from_pre_commit(project: Project, tmp_path: Path) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["provision-render-check"]
    rev = hook_repository(tmp_path / "hook-repo")

    init_repo(project.dir)
    (project.dir / ".gitignore").write_text(".provision/\nhome/\n", encoding="utf-8")
    config = {
        "repos": [
            {
                "repo": str(tmp_path / "hook-repo"),
                "rev": rev,
                "hooks": [{"id": "provision-render-check", "args": ["--sandbox"]}],
            }
        ]
    }
    (project.dir / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert project.run("render").returncode == 0
    git(project.dir, "add", "-A")
    git(project.dir, "commit", "-q", "-m", "roots")

    env = project.env()
    env.pop("PYTHONPATH", None)  # the hook runs the tool pre-commit installed, not this checkout
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")

    def pre_commit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pre-commit"), "run", *args],
            cwd=project.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=1100,
            check=False,
        )

    clean = pre_commit("--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "provision render --check" in clean.stdout and "Passed" in clean.stdout

    project.config["clusters"][0]["autotermination_minutes"] = 30
    project.write_config()
    git(project.dir, "add", "provision.yaml")
    stale = pre_commit()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "Failed" in stale.stdout and "clusters.tf" in stale.stdout

    assert project.run("render").returncode == 0
    git(project.dir, "add", "-A")
    fixed = pre_commit()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
