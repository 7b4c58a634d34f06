"""The code base stays ruff-clean and strictly typed: a lint or type error fails the suite, not just a
reviewer's patience."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.config import REPO


def test_ruff_clean() -> None:
    # ruff is a test dependency, installed beside this interpreter: run it from there.
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "provisioner", "tests", "bench", "scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "provisioner", "tests", "bench", "scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_clean() -> None:
    # Configured in pyproject.toml ([tool.mypy]: strict, the provisioner package and the tests; untyped
    # third-party libraries are Any). mypy is a test dependency, installed beside this interpreter.
    done = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_help_does_not_import_the_heavy_modules() -> None:
    """`provision --help` stays fast: argparse only, no jinja2/requests/yaml/jsonschema/grpc."""
    code = (
        "import sys; from provisioner.main import build_parser; build_parser().format_help(); "
        "heavy = [m for m in ('jinja2', 'requests', 'yaml', 'jsonschema', 'grpc', 'urllib3') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
