"""Replacing a file so that readers see the old content or the new one, never half of it.

The content goes to a hidden temporary file beside the target (same directory, so the same
file system), gets its final mode, and is renamed over the target: `os.replace` is atomic
on POSIX. A failure before the rename removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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
