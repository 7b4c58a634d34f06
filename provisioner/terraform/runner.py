"""TerraformRunner: one root, one binary, one explicit environment; a method per command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisioner.errors import TerraformError
from provisioner.terraform import process
from provisioner.terraform.apply import ApplyOptions, apply_args
from provisioner.terraform.binary import TerraformBinary
from provisioner.terraform.diagnostics import explain
from provisioner.terraform.environment import ChildEnv
from provisioner.terraform.init import (
    InitOptions,
    init_args,
    init_fingerprint,
    needs_init,
    record_init,
    seed_lock_file,
)
from provisioner.terraform.plan import PlanOptions, PlanOutcome, plan_args, plan_outcome
from provisioner.terraform.show import show_args
from provisioner.terraform.state import state_pull_args
from provisioner.terraform.validate import fmt_check_args, validate_args


class TerraformRunner:
    def __init__(
        self,
        binary: TerraformBinary,
        root: Path,
        env: ChildEnv,
        out: process.LineSink,
        err: process.LineSink | None = None,
        lock_seed: str | None = None,
    ) -> None:
        self.binary = binary
        self.root = root
        self.env = env
        self.out = out
        self.err = err or out
        # The lock file to start from when the root has none (the provider source knows its hashes).
        self.lock_seed = lock_seed

    def init(self, opts: InitOptions | None = None, *, force: bool = False) -> bool:
        """Run init when the root's providers or backend changed; True if it ran."""
        opts = opts or InitOptions()
        if self.lock_seed is not None:
            seed_lock_file(self.root, self.lock_seed)
        fingerprint = init_fingerprint(self.root, extra=repr(opts) + self.env.values.get("TF_CLI_CONFIG_FILE", ""))
        if not force and not opts.upgrade and not opts.migrate_state and not needs_init(self.root, fingerprint):
            return False
        self._run(init_args(opts), "init")
        # init may have written the lock file, which is itself an init input.
        record_init(
            self.root, init_fingerprint(self.root, extra=repr(opts) + self.env.values.get("TF_CLI_CONFIG_FILE", ""))
        )
        return True

    def validate(self) -> None:
        self._run(validate_args(), "validate")

    def fmt_check(self) -> None:
        self._run(fmt_check_args(), "fmt -check")

    def plan(self, opts: PlanOptions) -> PlanOutcome:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        done = process.run(self._argv(plan_args(opts)), cwd=self.root, env=self.env, out=self.out, err=self.err)
        outcome = plan_outcome(done.returncode)
        if outcome is PlanOutcome.ERROR:
            opts.out.unlink(missing_ok=True)
            raise self._failure("plan", done)
        return outcome

    def apply(self, opts: ApplyOptions) -> None:
        self._run(apply_args(opts), "apply")

    def show_json(self, plan_file: Path | None = None) -> dict[str, Any]:
        done = process.run(
            self._argv(show_args(plan_file)),
            cwd=self.root,
            env=self.env,
            out=self.out,
            err=self.err,
            capture_stdout=True,
        )
        if done.returncode != 0:
            raise self._failure("show", done)
        try:
            doc = json.loads(done.stdout or "{}")
        except json.JSONDecodeError:
            raise TerraformError(f"terraform show -json in {self.root}: output is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    def state_pull(self) -> dict[str, Any]:
        """The current state document ({} when there is none yet). Holds secrets: never print it."""
        done = process.run(
            self._argv(state_pull_args()), cwd=self.root, env=self.env, out=self.out, err=self.err, capture_stdout=True
        )
        if done.returncode != 0:
            raise self._failure("state pull", done)
        try:
            doc = json.loads(done.stdout) if done.stdout.strip() else {}
        except json.JSONDecodeError:
            raise TerraformError(f"terraform state pull in {self.root}: output is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    def _run(self, args: list[str], what: str) -> process.Completed:
        done = process.run(self._argv(args), cwd=self.root, env=self.env, out=self.out, err=self.err)
        if done.returncode != 0:
            raise self._failure(what, done)
        return done

    def _argv(self, args: list[str]) -> list[str]:
        return [self.binary.path, *args]

    def _failure(self, what: str, done: process.Completed) -> TerraformError:
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
