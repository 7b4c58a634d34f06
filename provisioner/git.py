"""The few questions we ask git about the user's repository (read-only, never a write).

`render --check` asks which files under a root git tracks (state or plan files must not be);
`envs --changed-since REF` asks what a file or directory looked like at REF.
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from provisioner.errors import ConfigError

# What the generated .gitignore keeps out of git (templates/gitignore.j2): all hold the token.
SECRET_BEARING = ("*.tfstate", "*.tfstate.*", "*.tfplan", ".terraform/*")


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError("git")
    return subprocess.run([git, *args], cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False)


def toplevel(path: Path) -> Path | None:
    """The work tree `path` lies in, or None (not a repository, or no git)."""
    directory = path if path.is_dir() else path.parent
    while not directory.is_dir():  # a root that does not exist yet
        directory = directory.parent
    try:
        done = _git(["rev-parse", "--show-toplevel"], directory)
    except (FileNotFoundError, OSError):
        return None
    if done.returncode != 0:
        return None
    return Path(done.stdout.decode().strip()).resolve()


def tracked(directory: Path) -> list[Path]:
    """Files under `directory` that git tracks (nothing outside a repository)."""
    top = toplevel(directory)
    if top is None or not directory.is_dir():
        return []
    done = _git(["ls-files", "-z", "--", "."], directory)
    if done.returncode != 0:
        return []
    return [directory / name for name in done.stdout.decode().split("\0") if name]


def tracked_secret_bearing(root: Path) -> list[Path]:
    """Tracked files under a root that hold the SAS token: state, backups, saved plans.

    A saved plan is recognised by name (`*.tfplan`) or by content: Terraform writes it as a
    zip archive with a `tfplan` member, whatever `-out` called it.
    """
    found = []
    for path in tracked(root):
        relative = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(relative, pattern) for pattern in SECRET_BEARING) or _is_saved_plan(path):
            found.append(path)
    return found


def _is_saved_plan(path: Path) -> bool:
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return "tfplan" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def resolve_ref(top: Path, ref: str) -> str:
    """The commit `ref` names, or one line saying how to make it available."""
    if ref.startswith("-"):
        raise ConfigError(f"--changed-since {ref}: not a git revision")
    done = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    if done.returncode != 0:
        raise ConfigError(
            f"--changed-since {ref}: no such commit in {top} — fetch it first "
            "(e.g. actions/checkout with fetch-depth: 0, or git fetch origin main)"
        )
    return done.stdout.decode().strip()


def show(top: Path, commit: str, path: Path) -> bytes | None:
    """The content of `path` at `commit`, or None if it did not exist there."""
    relative = _inside(top, path)
    if relative is None:
        return None
    done = _git(["show", f"{commit}:{relative}"], top)
    return done.stdout if done.returncode == 0 else None


def export(top: Path, commit: str, directory: Path, into: Path) -> Path | None:
    """Write `directory` as it was at `commit` under `into`; None if it was not in the repository."""
    relative = _inside(top, directory)
    if relative is None:
        return None
    done = _git(["archive", "--format=tar", commit, "--", relative], top)
    if done.returncode != 0:
        return None
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(into, filter="data")
    return into / relative


def changed_files(top: Path, commit: str, directory: Path) -> list[str]:
    """Tracked files under `directory` that differ between `commit` and the work tree."""
    relative = _inside(top, directory)
    if relative is None:
        return []
    done = _git(["diff", "--name-only", commit, "--", relative], top)
    return [line for line in done.stdout.decode().splitlines() if line] if done.returncode == 0 else []


def _inside(top: Path, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(top).as_posix() or "."
    except ValueError:
        return None
