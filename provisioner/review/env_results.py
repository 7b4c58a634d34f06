"""Per-environment results of a multi-environment run → the closing table and the worst exit code."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.console import Console
from provisioner.errors import ExitCode


@dataclass(frozen=True)
class EnvResult:
    env: str
    code: ExitCode  # NO_CHANGES, CHANGES or ERROR
    seconds: float
    message: str = ""


def worst_exit_code(results: list[EnvResult]) -> ExitCode:
    """ERROR (any failure) beats CHANGES (any changes) beats NO_CHANGES."""
    codes = {r.code for r in results}
    if ExitCode.ERROR in codes:
        return ExitCode.ERROR
    if ExitCode.CHANGES in codes:
        return ExitCode.CHANGES
    return ExitCode.NO_CHANGES


def print_results(console: Console, results: list[EnvResult], expand_unchanged: bool = False) -> None:
    """`N environments, X with changes, Y unchanged, Z failed`, then a row per failed or changed
    environment; unchanged ones collapse into one row (they need no reviewer's attention)
    unless `expand_unchanged`."""
    changed = [r for r in results if r.code == ExitCode.CHANGES]
    unchanged = sorted((r for r in results if r.code == ExitCode.NO_CHANGES), key=lambda r: r.env)
    failed = [r for r in results if r.code == ExitCode.ERROR]
    width = max((len(r.env) for r in results), default=3)
    console.line("")
    console.line(
        f"{len(results)} environments, {len(changed)} with changes, {len(unchanged)} unchanged, {len(failed)} failed"
    )
    shown = [*failed, *changed, *(unchanged if expand_unchanged or len(unchanged) == 1 else [])]
    for r in sorted(shown, key=lambda r: (r.code != ExitCode.ERROR, r.code != ExitCode.CHANGES, r.env)):
        state = {ExitCode.CHANGES: "changes", ExitCode.NO_CHANGES: "unchanged", ExitCode.ERROR: "FAILED"}[r.code]
        tail = f"  {r.message}" if r.message else ""
        console.line(f"  {r.env:<{width}}  {state:<9}  {r.seconds:6.1f}s{tail}")
    if len(unchanged) > 1 and not expand_unchanged:
        console.line(f"  unchanged: {', '.join(r.env for r in unchanged)}")
