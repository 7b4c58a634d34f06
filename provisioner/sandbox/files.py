"""The sandbox's own small helpers, copied rather than imported so that the emulator stands on its
own (a bug in shared code would agree with itself): replacing a file atomically (as
provisioner/atomic.py), the machine's cache directory, and hiding a SAS token's signature.
Where the sandbox must agree with the product, tests/sandbox/test_standalone.py says so.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def stage(path: Path, data: str | bytes, *, mode: int = 0o600, durable: bool = False) -> Path:
    """Write `data` (text as UTF-8, newlines untouched) to a new temporary sibling of `path`.

    `durable`: fsync before returning, for state that must survive a crash (the sandbox store).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


@contextmanager
def staged(path: Path, data: str | bytes, *, mode: int = 0o600, durable: bool = False) -> Iterator[Path]:
    """Stage `data`, let the caller check the staged file, then put it in place; any exception
    in the block removes it and leaves `path` untouched."""
    tmp = stage(path, data, mode=mode, durable=durable)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o600, durable: bool = False) -> None:
    """Replace `path` with `data` in one step (see the module docstring)."""
    with staged(path, data, mode=mode, durable=durable):
        pass


def tool_cache_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/dlz-provisioner`, by default `~/.cache/dlz-provisioner` (not created here):
    where .ci/run installs Azurite, as the tool's own cache (provisioner/cache_dir.py)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or str(Path.home())) / ".cache")
    return Path(base) / "dlz-provisioner"


_SIG_RE = re.compile(r"(sig=)[A-Za-z0-9%+/=_\-]+", re.IGNORECASE)


def mask_sas(token: str) -> str:
    """A SAS token with its signature hidden: `sv=...&sig=***`, safe to show or journal."""
    return _SIG_RE.sub(lambda m: m.group(1) + "***", token)
