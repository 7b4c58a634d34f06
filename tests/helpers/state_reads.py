"""What a `provision` run read and started, observed from outside the product's code.

- When it read a Terraform state file itself (a `local` backend's state is read from its file,
  provisioner.terraform.state.read_local_state): counted from inside that process by a Python
  audit hook (PEP 578 `sys.addaudithook`, event "open"), so what is counted is what the
  product's code opened — not Terraform's own opens, nor a mock. The command runs in a fresh
  interpreter (`python -c`, the hook first), as `provision` would.
- Which Terraform commands it started, and when: a TERRAFORM_BINARY that logs its arguments
  and the time, then is the real terraform (`logged_terraform`).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.project import Project

_LOG_ENV = "DLZ_TEST_STATE_OPENS"
_HOOKED_MAIN = f"""
import json, os, sys, time

_log = os.environ[{_LOG_ENV!r}]

def _hook(event, args):
    if event != "open" or not isinstance(args[0], (str, os.PathLike)):
        return
    path = os.fspath(args[0])
    # a state file, not the backend record init keeps in the data directory
    if path.endswith(".tfstate") and os.sep + ".terraform" + os.sep not in path:
        with open(_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({{"t": time.time(), "path": path}}) + "\\n")

sys.addaudithook(_hook)
from provisioner.main import cli
cli()  # as the `provision` executable runs it
"""


@dataclass
class Counted:
    returncode: int
    stdout: str
    stderr: str
    reads: list[float] = field(default_factory=list)  # epoch seconds of each open, in order


def run_counting_state_reads(project: Project, *args: str, env: Mapping[str, str]) -> Counted:
    """Run `provision <args>` on `project` with `env`; the times it opened a state file."""
    log = project.dir / "state-opens.jsonl"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", _HOOKED_MAIN, *project.cli_args(*args)],
        cwd=project.dir,
        env={**env, _LOG_ENV: str(log)},
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return Counted(done.returncode, done.stdout, done.stderr, [float(json.loads(line)["t"]) for line in lines])


@dataclass(frozen=True)
class LoggedTerraform:
    binary: Path  # for TERRAFORM_BINARY
    log: Path

    def runs(self) -> list[tuple[float, str]]:
        """(epoch seconds it started, its arguments) of every run so far, in order."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return [(float(started), args) for started, _, args in (line.partition(" ") for line in lines)]


def logged_terraform(directory: Path) -> LoggedTerraform:
    """A terraform in `directory` that appends the time and its arguments to a log, then is the
    real one."""
    real = shutil.which("terraform")
    assert real is not None
    log = directory / "terraform-runs.log"
    binary = directory / "terraform-logged"
    binary.write_text(
        f'#!/bin/sh\nprintf "%s %s\\n" "$(date +%s.%N)" "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(real)} "$@"\n',
        encoding="utf-8",
    )
    binary.chmod(0o755)
    return LoggedTerraform(binary, log)
