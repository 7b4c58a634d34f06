"""Installed the way users install a CLI, not `pip install -e` from a clone: an sdist and wheel
built once per test session (shared by every xdist worker), a clean environment for the fresh
installs, and the walk every installed `provision` must pass."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from provisioner.main import COMMANDS
from tests.helpers.config import REPO
from tests.helpers.project import Project

BIN = Path(sys.executable).parent


def clean_env(project: Project) -> dict[str, str]:
    """The project's environment without anything that would import the checkout instead."""
    env = project.env()
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(key, None)
    return env


def run(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def session_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist + wheel of a copy of the tracked tree (the build must not need anything untracked),
    built by the first worker that asks and reused by the others (under a file lock in the
    session's shared temp directory: each xdist worker's basetemp is a child of it)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out, done = shared / "install-dist", shared / "install-dist.done"
    with (shared / "install-dist.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            _build(tmp_path_factory.mktemp("src"), out)
            done.touch()
    return out


def _build(src: Path, out: Path) -> None:
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
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "deprecated" not in built.stdout + built.stderr, "the build warns: " + built.stderr[-2000:]


def walk(provision: Path, project: Project) -> None:
    """Every command, as README's walk runs them, through the installed console script."""
    env = clean_env(project)
    for name in COMMANDS:
        helped = run([str(provision), name, "--help"], project.dir, env)
        assert helped.returncode == 0, f"{name} --help: {helped.stderr}"

    def provision_(*args: str, expect: int | tuple[int, ...] = 0) -> subprocess.CompletedProcess[str]:
        done = run([str(provision), *args, "--sandbox"], project.dir, env, timeout=300)
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
