"""The error handler: one line and the right exit code for every way a command can end."""

from __future__ import annotations

import argparse
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.console import Console
from provisioner.error_handler import run_command
from provisioner.errors import ConfigError, ExitCode, ProvisionError
from provisioner.secret import Secret
from provisioner.terraform.process import Cancelled

LEAKED = "sv=2024-01-01&sig=SECRETsignature0123456789abcdef"


@pytest.fixture(autouse=True)
def keep_signal_handlers() -> Iterator[None]:
    """run_command routes SIGINT/SIGTERM to Terraform children; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class Stderr:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().err


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Stderr:
    return Stderr(capsys)


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


ARGS = argparse.Namespace(no_color=True)


def _raising(exc: BaseException) -> object:
    def command(args: argparse.Namespace, console: Console) -> int:
        raise exc

    return command


def test_a_command_returns_its_own_code(stderr: Stderr) -> None:
    assert run_command(lambda args, console: ExitCode.CHANGES, ARGS) == 2
    assert stderr.getvalue() == ""


def test_a_provision_error_is_one_masked_line_and_exit_1(stderr: Stderr) -> None:
    Secret(LEAKED)
    code = run_command(_raising(ConfigError(f"provision.yaml: bad\nsecond line {LEAKED}")), ARGS)  # type: ignore[arg-type]
    assert code == ExitCode.ERROR
    (line,) = stderr.getvalue().splitlines()
    assert line.startswith("error: provision.yaml: bad second line")
    assert "SECRETsignature" not in line


def test_an_error_keeps_its_own_exit_code(stderr: Stderr) -> None:
    class Drift(ProvisionError):
        exit_code = ExitCode.DRIFT

    assert run_command(_raising(Drift("x")), ARGS) == 4  # type: ignore[arg-type]
    assert run_command(_raising(Cancelled("interrupted: terraform plan stopped")), ARGS) == 130  # type: ignore[arg-type]


def test_ctrl_c_is_130(stderr: Stderr) -> None:
    assert run_command(_raising(KeyboardInterrupt()), ARGS) == ExitCode.CANCELLED  # type: ignore[arg-type]
    assert stderr.getvalue().strip() == "error: interrupted"


def test_a_bug_is_exit_70_with_a_masked_traceback_in_a_file(stderr: Stderr, crash_dir: Path) -> None:
    Secret(LEAKED)
    code = run_command(_raising(ValueError(f"boom {LEAKED}")), ARGS)  # type: ignore[arg-type]
    assert code == ExitCode.CRASH and int(code) == 70
    (line,) = stderr.getvalue().splitlines()
    assert "unexpected ValueError — this is a bug" in line and "SECRETsignature" not in line
    (log,) = crash_dir.glob("provision-crash-*.log")
    assert str(log) in line
    text = log.read_text()
    assert "Traceback" in text and "ValueError: boom" in text
    assert "SECRETsignature" not in text
