"""Shared by the tests of the Databricks layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unified auth reads the process environment and ~/.databrickscfg: start from nothing."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "ACTIONS_ID_TOKEN", "AZURE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
