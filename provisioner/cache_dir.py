"""Where dlz-provisioner keeps what it can reuse across runs on one machine (never secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def tool_cache_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/dlz-provisioner`, by default `~/.cache/dlz-provisioner` (not created here)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or str(Path.home())) / ".cache")
    return Path(base) / "dlz-provisioner"
