"""The layering docs/architecture.md promises, checked on the source: the argparse namespace
stays in the command layer, and workspace clients cross module seams typed (not `Any`)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.helpers.config import REPO

PACKAGE = REPO / "provisioner"
# The command layer: the parser, its dispatch and the commands themselves.
COMMAND_LAYER = {PACKAGE / "main.py", PACKAGE / "error_handler.py"}
# Parameters that carry a client or credentials across a seam: their type is a contract.
TYPED_SEAMS = {"args", "client", "workspace", "creds", "identity", "secrets", "ctx"}


def _below_commands() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in COMMAND_LAYER and PACKAGE / "commands" not in path.parents and "sandbox" not in path.parts
    ]


def _annotation(node: ast.arg) -> str:
    return ast.unparse(node.annotation) if node.annotation is not None else ""


def _parameters(tree: ast.AST) -> list[ast.arg]:
    """Named parameters (not *args/**kwargs) of every function and lambda."""
    out: list[ast.arg] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            out += node.args.posonlyargs + node.args.args + node.args.kwonlyargs
    return out


def test_no_argparse_namespace_below_the_commands() -> None:
    found = []
    for path in _below_commands():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if "argparse" in names:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: imports argparse")
        for arg in _parameters(tree):
            if "Namespace" in _annotation(arg) or (arg.arg == "args" and _annotation(arg) in ("", "Any", "object")):
                found.append(f"{path.relative_to(REPO)}:{arg.lineno}: parameter {arg.arg}: {_annotation(arg)}")
    assert found == []


def test_clients_and_credentials_cross_seams_typed() -> None:
    found = []
    for path in _below_commands():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for arg in _parameters(tree):
            if arg.arg in TYPED_SEAMS and _annotation(arg) in ("", "Any", "object"):
                found.append(f"{path.relative_to(REPO)}:{arg.lineno}: {arg.arg}: {_annotation(arg) or 'untyped'}")
    assert found == []


def test_import_contracts_are_kept() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the layers (data flows one way) and the
    sandbox behind the run context's seam (only run/context.py and `provision sandbox` import it)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_import_cycles_not_even_type_only() -> None:
    """Every import counts, those under `if TYPE_CHECKING:` too: the graph has no circle, so each
    module can be read knowing only what it imports."""
    graph = grimp.build_graph("provisioner", include_external_packages=False)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []
