"""The executing half of the runner (terraform-exec's `cmd.go`): one root, one binary, one
explicit environment; run an argument list, stream or capture its output, turn a failure
into one line. The commands themselves (options, arguments, method) live one per file:
init.py, plan.py, apply.py, show.py, state.py; `TerraformRunner` (terraform.py) joins them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioner.errors import TerraformError
from provisioner.terraform import process
from provisioner.terraform.binary import TerraformBinary
from provisioner.terraform.diagnostics import explain
from provisioner.terraform.early import EarlyKeeper
from provisioner.terraform.environment import ChildEnv
from provisioner.terraform.targeting import without_targeting_warnings


class Runner:
    def __init__(
        self,
        binary: TerraformBinary,
        root: Path,
        env: ChildEnv,
        out: process.LineSink,
        err: process.LineSink | None = None,
        lock_seed: str | None = None,
        init_dir: Path | None = None,
        quiet: Mapping[str, str] | None = None,
        early: EarlyKeeper | None = None,
    ) -> None:
        self.binary = binary
        self.root = root
        self.env = env
        self.out = out
        self.err = err or out
        # The lock file to start from when the root has none (the provider source knows its hashes).
        self.lock_seed = lock_seed
        # Where `terraform init` runs and keeps the lock file, when not in the root (init.py).
        self.init_dir = init_dir
        # Warnings the target causes by design (Target.expected_warnings), left out of the output.
        self.quiet = dict(quiet or {})
        # A keeper started while `provision` loaded, for the first command that uses providers.
        self.early = early
        # Set: the running command is asked to stop (process.run's `stop`).
        self.stop: threading.Event | None = None
        # Set by the command once its process exists (process.run's `started`).
        self.started: threading.Event | None = None

    def execute(
        self, args: Sequence[str], *, capture_stdout: bool = False, cwd: Path | None = None, env: ChildEnv | None = None
    ) -> process.Completed:
        """Run `terraform <args>` in the root (or `cwd`); the caller judges the exit code."""
        return process.run(
            [self.binary.path, *args],
            cwd=cwd or self.root,
            env=env or self.env,
            # Per run: the filter follows one output stream (provisioner.terraform.targeting).
            out=without_targeting_warnings(self.out, self.quiet),
            err=self.err,
            capture_stdout=capture_stdout,
            stop=self.stop,
            started=self.started,
            early=self.early,
        )

    def run(
        self, args: Sequence[str], what: str, *, cwd: Path | None = None, env: ChildEnv | None = None
    ) -> process.Completed:
        """Run and raise a one-line TerraformError unless it exits 0."""
        done = self.execute(args, cwd=cwd, env=env)
        if done.returncode != 0:
            raise self.failure(what, done)
        return done

    def run_json(self, args: Sequence[str], what: str) -> dict[str, Any]:
        """Run, capture stdout and parse it as one JSON object ({} for empty output)."""
        done = self.execute(args, capture_stdout=True)
        if done.returncode != 0:
            raise self.failure(what, done)
        try:
            doc = json.loads(done.stdout) if done.stdout.strip() else {}
        except json.JSONDecodeError:
            raise TerraformError(f"terraform {what} in {self.root}: output is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    def failure(self, what: str, done: process.Completed) -> TerraformError:
        explained = explain(what, self.root, done.stderr_tail)  # backend changed, state locked, …
        if explained is not None:
            return TerraformError(explained)
        return TerraformError(
            f"terraform {what} failed in {self.root} (exit {done.returncode}): {_headline(done.stderr_tail)}"
        )


def _headline(stderr_tail: str) -> str:
    """The first `Error:` line Terraform printed (its diagnostics are boxed with │)."""
    texts = [line.strip().lstrip("│╷╵ ").strip() for line in stderr_tail.splitlines()]
    texts = [text for text in texts if text]
    for text in texts:
        if text.startswith("Error:"):
            return text
    return texts[-1] if texts else "see the output above"
