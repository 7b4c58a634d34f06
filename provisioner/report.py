"""The last step: per-environment results → a combined summary line/table and the exit code."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.console import Console

NO_CHANGES, ERROR, CHANGES = 0, 1, 2


@dataclass(frozen=True)
class EnvResult:
    env: str
    code: int  # 0 no changes, 2 changes, 1 failed
    seconds: float
    message: str = ""


def worst_exit_code(results: list[EnvResult]) -> int:
    """1 (any failure) beats 2 (any changes) beats 0."""
    codes = {r.code for r in results}
    if ERROR in codes:
        return ERROR
    if CHANGES in codes:
        return CHANGES
    return NO_CHANGES


def print_summary(console: Console, results: list[EnvResult], expand_unchanged: bool = False) -> None:
    """`N environments, X with changes, Y unchanged, Z failed`, then a row per failed or changed
    environment; unchanged ones collapse into one row (they need no reviewer's attention)
    unless `expand_unchanged`."""
    changed = [r for r in results if r.code == CHANGES]
    unchanged = sorted((r for r in results if r.code == NO_CHANGES), key=lambda r: r.env)
    failed = [r for r in results if r.code == ERROR]
    width = max((len(r.env) for r in results), default=3)
    console.line("")
    console.line(
        f"{len(results)} environments, {len(changed)} with changes, {len(unchanged)} unchanged, {len(failed)} failed"
    )
    shown = [*failed, *changed, *(unchanged if expand_unchanged or len(unchanged) == 1 else [])]
    for r in sorted(shown, key=lambda r: (r.code != ERROR, r.code != CHANGES, r.env)):
        state = {CHANGES: "changes", NO_CHANGES: "unchanged", ERROR: "FAILED"}[r.code]
        tail = f"  {r.message}" if r.message else ""
        console.line(f"  {r.env:<{width}}  {state:<9}  {r.seconds:6.1f}s{tail}")
    if len(unchanged) > 1 and not expand_unchanged:
        console.line(f"  unchanged: {', '.join(r.env for r in unchanged)}")
