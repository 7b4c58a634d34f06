"""recovered.tf: a killed apply's is removed before the next plan reads the root; a live run's is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provisioner.operations.recover import RECOVERED_FILE, remove_abandoned_recovery
from provisioner.render.root import HEADER_MARK


def _write(root: Path, pid: int) -> Path:
    path = root / RECOVERED_FILE
    path.write_text(f"{HEADER_MARK} (environment dev) for one apply (written by process {pid}).\n\nimport {{}}\n")
    return path


def test_a_killed_writers_file_goes_and_a_live_ones_stays(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    path = _write(tmp_path, dead_pid)
    assert remove_abandoned_recovery(tmp_path) and not path.exists()

    path = _write(tmp_path, os.getpid())  # this process: alive since before the file was written
    assert not remove_abandoned_recovery(tmp_path) and path.exists()


def test_a_file_the_user_wrote_is_never_touched(tmp_path: Path) -> None:
    path = tmp_path / RECOVERED_FILE
    path.write_text("import {}\n")
    assert not remove_abandoned_recovery(tmp_path) and path.exists()
