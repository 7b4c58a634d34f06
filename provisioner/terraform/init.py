"""`terraform init`, skipped when the working directory is already initialised for this root."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.atomic import stage
from provisioner.terraform.runner import Runner

# What init depends on: provider requirements and the backend. When their hash matches the
# one recorded after the last successful init, init is skipped (it costs seconds per plan).
LOCK_FILE = ".terraform.lock.hcl"
_INIT_INPUTS = ("versions.tf", "provider.tf", LOCK_FILE)
STAMP = ".terraform/dlz-provisioner-init.sha256"


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
        if self.lock_seed is not None:
            seed_lock_file(self.root, self.lock_seed)
        extra = self._init_extra(opts)
        if not force and not self.init_needed(opts):
            return False
        self.run(init_args(opts), "init")
        # init may have written the lock file, which is itself an init input.
        record_init(self.root, init_fingerprint(self.root, extra))
        return True

    def init_needed(self, opts: InitOptions | None = None) -> bool:
        """Would `init(opts)` run terraform init? (Reads files only.)"""
        opts = opts or InitOptions()
        if opts.upgrade or opts.migrate_state:
            return True
        if self.lock_seed is not None and not (self.root / LOCK_FILE).is_file():
            return True  # init seeds it first
        return needs_init(self.root, self._init_extra(opts))

    def _init_extra(self, opts: InitOptions) -> str:
        return repr(opts) + self.env.values.get("TF_CLI_CONFIG_FILE", "")


def init_fingerprint(root: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for name in _INIT_INPUTS:
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def needs_init(root: Path, extra: str = "") -> bool:
    stamp = root / STAMP
    if not (root / ".terraform").is_dir() or not stamp.is_file():
        return True
    return stamp.read_text().strip() != init_fingerprint(root, extra)


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
