"""`terraform init`, skipped when the working directory is already initialised for this root."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

# What init depends on: provider requirements and the backend. When their hash matches the
# one recorded after the last successful init, init is skipped (it costs seconds per plan).
_INIT_INPUTS = ("versions.tf", "provider.tf", ".terraform.lock.hcl")
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


def init_fingerprint(root: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for name in _INIT_INPUTS:
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def needs_init(root: Path, fingerprint: str) -> bool:
    stamp = root / STAMP
    return not (root / ".terraform").is_dir() or not stamp.is_file() or stamp.read_text().strip() != fingerprint


def record_init(root: Path, fingerprint: str) -> None:
    stamp = root / STAMP
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
