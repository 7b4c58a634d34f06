"""The install tests: three files (the artifacts, pip, pipx) so the suite's workers run the
two fresh installs side by side; the sdist and wheel are built once for all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.install import session_dist


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return session_dist(tmp_path_factory)
