"""The local backend's lock: `flock` on a file beside the state, so a dead process releases it.

The kernel drops an open file's lock when the process holding it ends, however it ends
(kill -9 included), so a crashed run never blocks the next one. The holder removes the file
when it lets go (a killed one leaves it, unlocked); whoever gets the lock checks it still
holds the file at that path, the usual lock-file discipline, so a removal never lets two in. The file descriptor is not
inherited by children (Python opens files close-on-exec), so a Terraform or provider process
that outlived us would not keep it. `flock`, not `lockf`: a POSIX record lock is per process,
and Terraform's own local-state lock (`statemgr/filesystem_lock_unix.go`: `F_SETLK` on the
state file itself) is why the lock is a separate file rather than the state.

Records (the rotation journal) are JSON files beside it, replaced atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from provisioner.atomic import atomic_write
from provisioner.lock.holder import Holder

LOCK_SUFFIX = ".dlz-lock"


class LocalLock:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.path = state_path.with_name(state_path.name + LOCK_SUFFIX)
        self._file: IO[str] | None = None
        self._created: list[Path] = []

    @property
    def where(self) -> str:
        return f"lock file {self.path}"

    @property
    def dead_holder(self) -> str:
        return "the kernel drops a dead process's file lock"

    def try_acquire(self, holder: Holder) -> bool:
        created = self._missing_dirs()
        for parent in reversed(created):
            parent.mkdir(exist_ok=True)
        while True:
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 — held open for as long as the lock
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                self._remove_dirs(created)
                return False
            if self._still_the_file(fh):
                break
            fh.close()  # the holder before us removed it as we opened it: lock the new one
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(holder.as_json(), sort_keys=True) + "\n")
        fh.flush()
        self._file, self._created = fh, created
        return True

    def _still_the_file(self, fh: IO[str]) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            return False

    def _missing_dirs(self) -> list[Path]:
        """The lock's directories that do not exist yet, innermost first (a root never rendered)."""
        missing, parent = [], self.path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        return missing

    @staticmethod
    def _remove_dirs(created: list[Path]) -> None:
        """A command that rendered nothing leaves no root behind just for its lock."""
        for parent in created:
            try:
                parent.rmdir()
            except OSError:
                return  # something else lives there now (a render): keep it

    def holder(self) -> Holder | None:
        try:
            text = self.path.read_text(encoding="utf-8")
            return Holder.from_json(json.loads(text))
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        fh, self._file = self._file, None
        if fh is None:
            return
        # Removed while still locked; a run that opened it meanwhile sees it is gone once it gets
        # the lock (`_still_the_file`) and locks a new one, so no two runs ever hold it at once.
        with contextlib.suppress(OSError):
            self.path.unlink()
        fh.close()  # closing drops the lock
        self._remove_dirs(self._created)

    def close(self) -> None:
        self.release()

    def _record_path(self, name: str) -> Path:
        return self.state_path.with_name(f"{self.state_path.name}.dlz-{name}.json")

    def read_record(self, name: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._record_path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # present but unreadable: the caller decides what an unknown record means
        return doc if isinstance(doc, dict) else {}

    def write_record(self, name: str, doc: dict[str, Any]) -> None:
        path = self._record_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", durable=True)

    def delete_record(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._record_path(name))
