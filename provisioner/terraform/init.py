"""`terraform init`, skipped when the working directory is already initialised for this root.

With an `init_dir` (a target whose provider is not the registry's: the sandbox), init runs
there instead of in the root: the directory holds a symlink to each of the root's files and
folders, and `TF_DATA_DIR` is the root's own `.terraform`, so plan and apply in the root find
the backend, modules and providers init set up — but the lock file init writes stays in
`init_dir`. A root's committed `.terraform.lock.hcl` (the real provider's hashes) is then never
read or written by such a run. Terraform keeps the lock file in the working directory
(internal/command/meta_dependencies.go, `dependencyLockFilename`), so a working directory of its
own is the only way to keep it elsewhere; `-lockfile=readonly` still checks the root's file and
refuses a provider whose hashes it does not list. Plan and apply then need the target's CLI
config to supply the provider without the lock file (its `dev_overrides`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from provisioner.atomic import stage
from provisioner.terraform.diagnostics import lost_catalog_race
from provisioner.terraform.runner import Runner

# What init depends on: provider requirements and the backend. When their hash matches the
# one recorded after the last successful init, init is skipped (it costs seconds per plan).
LOCK_FILE = ".terraform.lock.hcl"
_INIT_INPUTS = ("versions.tf", "provider.tf", LOCK_FILE)
STAMP = ".terraform/dlz-provisioner-init.sha256"
# Terraform's pg backend creates its tables with CREATE … IF NOT EXISTS on every init, and
# PostgreSQL does not make that safe against a concurrent twin (diagnostics.lost_catalog_race):
# the run that loses has found the winner's tables committed, so init run once more succeeds.
# Three attempts: a second loss would need a third root creating the same object in between.
INIT_ATTEMPTS = 3


@dataclass(frozen=True)
class InitOptions:
    upgrade: bool = False
    migrate_state: bool = False
    reconfigure: bool = False
    backend_config: tuple[str, ...] = ()  # file paths only; values never go on argv


def init_args(opts: InitOptions) -> list[str]:
    args = ["init", "-input=false", "-no-color"]
    if opts.upgrade:
        args.append("-upgrade")
    if opts.migrate_state:
        args += ["-migrate-state", "-force-copy"]
    if opts.reconfigure:
        args.append("-reconfigure")
    args += [f"-backend-config={path}" for path in opts.backend_config]
    return args


class Init(Runner):
    def init(self, opts: InitOptions | None = None, *, force: bool = False) -> bool:
        """Run init when the root's providers or backend changed; True if it ran."""
        opts = opts or InitOptions()
        workdir = self._init_workdir()
        if self.lock_seed is not None:
            seed_lock_file(workdir, self.lock_seed)
        extra = self._init_extra(opts)
        if not force and not self.init_needed(opts):
            return False
        env = self.env
        if workdir != self.root:
            data_dir = str((self.root / ".terraform").resolve())
            env = dataclasses.replace(env, values={**env.values, "TF_DATA_DIR": data_dir})
        for attempt in range(1, INIT_ATTEMPTS + 1):
            done = self.execute(init_args(opts), cwd=workdir, env=env)
            if done.returncode == 0:
                break
            if attempt == INIT_ATTEMPTS or not lost_catalog_race(done.stderr_tail):
                raise self.failure("init", done)
            self.err("another run was creating the pg backend's tables at the same moment: running init again")
        # init may have written the lock file, which is itself an init input.
        record_init(self.root, init_fingerprint(self.root, extra, workdir))
        return True

    def _init_workdir(self) -> Path:
        """The root, or the init directory mirroring it (module docstring)."""
        if self.init_dir is None:
            return self.root
        left = self.root / LOCK_FILE
        if self.lock_seed is not None and left.is_file() and left.read_text(encoding="utf-8") == self.lock_seed:
            # This very target wrote it there before init moved out of the root: a real
            # `terraform init` would refuse its hash, so it must not be committed.
            left.unlink(missing_ok=True)
        mirror_root(self.root, self.init_dir)
        return self.init_dir

    def init_needed(self, opts: InitOptions | None = None) -> bool:
        """Would `init(opts)` run terraform init? (Reads files only.)"""
        opts = opts or InitOptions()
        if opts.upgrade or opts.migrate_state:
            return True
        workdir = self.init_dir or self.root
        if self.lock_seed is not None and not (workdir / LOCK_FILE).is_file():
            return True  # init seeds it first
        return needs_init(self.root, self._init_extra(opts), workdir)

    def _init_extra(self, opts: InitOptions) -> str:
        return repr(opts) + self.env.values.get("TF_CLI_CONFIG_FILE", "")


def init_fingerprint(root: Path, extra: str = "", workdir: Path | None = None) -> str:
    digest = hashlib.sha256(extra.encode())
    for name in _INIT_INPUTS:
        path = (workdir or root) / name if name == LOCK_FILE else root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def needs_init(root: Path, extra: str = "", workdir: Path | None = None) -> bool:
    stamp = root / STAMP
    if not (root / ".terraform").is_dir() or not stamp.is_file():
        return True
    return stamp.read_text().strip() != init_fingerprint(root, extra, workdir)


def record_init(root: Path, fingerprint: str) -> None:
    stamp = root / STAMP
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")


def seed_lock_file(root: Path, content: str) -> None:
    """Write `.terraform.lock.hcl` if the root has none; an existing one is the user's choice."""
    path = root / LOCK_FILE
    if path.exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = stage(path, content, mode=0o644)
    try:
        os.link(tmp, path)  # atomic and never overwrites: a concurrent run may have written it
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


# What init must not see through the mirror: the root's own working data and lock file.
_NOT_MIRRORED = frozenset({".terraform", LOCK_FILE})
# A local backend's default state files are linked even before they exist: init reads them
# when it migrates state away, and writes them through the link (Terraform's statemgr opens
# the path with O_CREATE, no rename) when it migrates state here — into the root.
_STATE_FILES = ("terraform.tfstate", "terraform.tfstate.backup")


def mirror_root(root: Path, init_dir: Path) -> None:
    """Make `init_dir` hold a symlink to each of the root's entries (and nothing else but its
    lock file), atomically per link: two runs may mirror one root at once."""
    init_dir.mkdir(parents=True, exist_ok=True)
    resolved = root.resolve()
    wanted = {p.name: resolved / p.name for p in root.iterdir() if p.name not in _NOT_MIRRORED} if root.is_dir() else {}
    wanted.update({name: resolved / name for name in _STATE_FILES})
    for entry in init_dir.iterdir():
        if entry.name == LOCK_FILE or entry.name.startswith(".tmp-"):
            continue
        if entry.name not in wanted or not entry.is_symlink() or Path(os.readlink(entry)) != wanted[entry.name]:
            if not entry.is_symlink() and entry.is_dir():
                continue  # not ours to remove (a link's place is taken by a directory: init fails, loudly)
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    for name, target in wanted.items():
        link = init_dir / name
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        tmp = init_dir / f".tmp-{name}-{os.getpid()}-{threading.get_ident()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)
