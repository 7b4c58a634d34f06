"""What a CLI run printed."""

from __future__ import annotations

import subprocess

from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def no_secrets(done: subprocess.CompletedProcess[str], *tokens: str) -> None:
    """Neither the project's secrets nor `tokens` nor an unmasked SAS signature in its output."""
    text = done.stdout + done.stderr
    for secret in (AEP_SECRET, DATABRICKS_PAT, *tokens):
        assert secret not in text
    assert "sig=" not in text.replace("sig=***", "")
