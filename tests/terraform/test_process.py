"""Running a child: live masked output, kept stderr, SIGINT forwarded, umask 077."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioner.secret import Secret
from provisioner.terraform import process
from provisioner.terraform.environment import build_child_env


def test_output_is_streamed_and_masked(tmp_path: Path) -> None:
    secret = Secret("super-secret-value-123")
    lines: list[str] = []
    script = "import sys; print('token=super-secret-value-123'); print('sig=abcDEF%3D', file=sys.stderr); sys.exit(3)"
    done = process.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=build_child_env(dict(os.environ)), out=lines.append
    )
    assert done.returncode == 3
    assert "token=***" in lines and "sig=***" in lines
    assert "sig=***" in done.stderr_tail
    assert secret.reveal() not in "".join(lines)


def test_files_created_by_the_child_are_private(tmp_path: Path) -> None:
    script = "open('state.json', 'w').write('{}')"
    process.run([sys.executable, "-c", script], cwd=tmp_path, env=build_child_env(dict(os.environ)), out=print)
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600


def test_sigint_is_forwarded_and_the_child_stops_cleanly(tmp_path: Path) -> None:
    # The child traps SIGINT like Terraform: it finishes its work (writes a file) and exits.
    script = (
        "import signal, sys, time\n"
        "def stop(*a):\n"
        "    open('stopped-cleanly', 'w').write('yes'); sys.exit(1)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    ready = threading.Event()

    def sink(line: str) -> None:
        if line == "ready":
            ready.set()

    def interrupt() -> None:
        ready.wait(10)
        process.CHILDREN.forward(signal.SIGINT, None)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(process.Cancelled, match="interrupted"):
        process.run([sys.executable, "-c", script], cwd=tmp_path, env=build_child_env(dict(os.environ)), out=sink)
    assert time.monotonic() - started < 10
    assert (tmp_path / "stopped-cleanly").read_text() == "yes"
