"""Running a child: live masked output, kept stderr, SIGINT forwarded, umask 077."""

from __future__ import annotations

import os
import signal
import subprocess
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


def test_when_we_are_killed_the_child_gets_sigint_finishes_and_leaves_nothing(tmp_path: Path) -> None:
    """kill -9 of the caller: the child (Terraform's stand-in) is asked to stop, not killed; it
    can still print (no SIGPIPE death) and finish; what it started (a provider) does not outlive it."""
    child = (
        "import signal, subprocess, sys, time\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "open('grandchild.pid', 'w').write(str(grandchild.pid))\n"
        "def stop(*a):\n"
        "    for _ in range(1000):\n"
        "        print('Interrupt received. Gracefully shutting down...', flush=True)\n"
        "    open('stopped-cleanly', 'w').write('yes'); sys.exit(1)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    driver = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from provisioner.terraform import process\n"
        "from provisioner.terraform.environment import build_child_env\n"
        "def sink(line):\n"
        "    if line == 'ready':\n"
        "        Path('child-ready').touch()\n"
        "env = build_child_env(dict(os.environ))\n"
        f"process.run([sys.executable, '-c', {child!r}], cwd=Path('.'), env=env, out=sink)\n"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", driver],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "child-ready").exists():
        assert caller.poll() is None and time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 30
    while not (tmp_path / "stopped-cleanly").exists() or _alive(grandchild):
        if time.monotonic() > deadline:
            if _alive(grandchild):
                os.kill(grandchild, signal.SIGKILL)
            pytest.fail(f"stopped cleanly: {(tmp_path / 'stopped-cleanly').exists()}; grandchild left: {grandchild}")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
