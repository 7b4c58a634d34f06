"""What docs/architecture.md says, checked on the source: every path it names exists, only the
SAS mode objects know the modes' names, the state is pulled only by terraform/, and every exit
code means one thing. (The layers and the sandbox's seam: tests/test_layering.py.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from provisioner.errors import ExitCode
from tests.helpers.config import REPO

PACKAGE = REPO / "provisioner"
DOC = REPO / "docs" / "architecture.md"
MODE_NAMES = frozenset({"inline", "secret_scope"})


def _sources(*, outside: tuple[str, ...]) -> list[Path]:
    skipped = [PACKAGE / part for part in outside]
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not any(s in p.parents for s in skipped)]


def test_every_path_the_architecture_doc_names_exists() -> None:
    named = {m for m in re.findall(r"`([^`\s]+)`", DOC.read_text(encoding="utf-8")) if "/" in m}
    missing = []
    for path in sorted(named):
        if any(c in path for c in "<>*…"):
            continue  # a pattern (`commands/<name>.py`, `terraform/<env>/*.tf`), not a path
        if not any((base / path).exists() for base in (PACKAGE, REPO)):
            missing.append(path)
    assert missing == []


def _compares_a_mode(node: ast.Compare) -> bool:
    sides = [node.left, *node.comparators]
    names_a_mode = any(isinstance(s, ast.Constant) and s.value in MODE_NAMES for s in sides)
    reads_sas_mode = any(
        isinstance(s, ast.Attribute)
        and s.attr == "mode"
        and isinstance(s.value, ast.Attribute)
        and s.value.attr == "sas"
        for s in sides
    )
    return names_a_mode or reads_sas_mode


def test_only_the_mode_objects_know_the_modes() -> None:
    """sas/ holds one object per mode (sas/mode.py); config/ defines the setting; the sandbox
    emulates the provider, not the tool. Everything else asks `mode_of(env)`."""
    found = []
    for path in _sources(outside=("sas", "config", "sandbox")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and _compares_a_mode(node):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_the_mode_check_sees_a_mode_test() -> None:
    """The check above can fail: it finds the forms the modes were once tested by."""
    for code in ('env.sas.mode == "secret_scope"', 'x.sas.mode != "inline"', '"inline" == mode'):
        (expr,) = ast.parse(code).body
        assert isinstance(expr, ast.Expr) and isinstance(expr.value, ast.Compare)
        assert _compares_a_mode(expr.value)


def test_state_is_pulled_only_by_terraform() -> None:
    found = []
    for path in _sources(outside=("terraform", "sandbox")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "state_pull":
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def test_exit_codes_mean_one_thing_each() -> None:
    """0 is success whatever the command (its aliases say which success); every other code has
    one meaning, so an alert on `status` never reads a crash as "expiring"."""
    others = [code for code in ExitCode.__members__.values() if code != 0]
    assert len({int(c) for c in others}) == len({c.name for c in others})
    assert {c.name: int(c) for c in others} == {
        "ERROR": 1,
        "CHANGES": 2,
        "EXPIRING": 3,
        "DRIFT": 4,
        "CRASH": 70,
        "CANCELLED": 130,
    }


def _speaks_of_the_sandbox(tree: ast.AST) -> list[ast.AST]:
    """Names (functions, variables, attributes) that start with `sandbox`, and text addressed
    to the user as the sandbox's (`"sandbox: …"`). An AEP sandbox (`aep.sandbox`, the
    `x-sandbox-name` header) is AEP's own word and is left alone."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        name = (
            node.name
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            else node.id
            if isinstance(node, ast.Name)
            else node.attr
            if isinstance(node, ast.Attribute)
            else None
        )
        aeps_own = (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "aep"
        )
        if name is not None and name.lower().startswith("sandbox") and not aeps_own:
            found.append(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("sandbox:"):
            found.append(node)
    return found


def test_operations_never_ask_whether_they_run_on_the_sandbox() -> None:
    """The work of each command (operations/, sas/, databricks/, terraform/, render/, reach/,
    review/) sees the outside world only through `run.target.Target`: no sandbox-only report,
    hook or branch (issue 24)."""
    layers = ("operations", "sas", "databricks", "terraform", "render", "reach", "review")
    found = []
    for path in sorted(p for layer in layers for p in (PACKAGE / layer).rglob("*.py")):
        for node in _speaks_of_the_sandbox(ast.parse(path.read_text(encoding="utf-8"))):
            found.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)[:60]}")
    assert found == []


def test_the_sandbox_check_sees_a_sandbox_report() -> None:
    """The check above can fail: it finds the report `rotate` once printed on the sandbox."""
    code = 'def sandbox_report(ctx, when):\n    console.info(f"sandbox: {when}")\nsandbox_report(ctx, "now")'
    assert len(_speaks_of_the_sandbox(ast.parse(code))) >= 2
