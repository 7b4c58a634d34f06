"""The rotation marker: what an unfinished rotation leaves behind, and how it reads back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from provisioner.config.model import load_config
from provisioner.operations.rotate.marker import MARKER_NAME, RotationMarker
from tests.conftest import Project


@pytest.fixture
def marker(tmp_path: Path) -> RotationMarker:
    return RotationMarker(tmp_path / ".terraform" / MARKER_NAME)


def test_it_lives_in_the_roots_terraform_directory(project: Project) -> None:
    (env,) = load_config(project.config_path, environ={}).select()
    assert RotationMarker.of(env).path == project.root() / ".terraform" / "dlz-rotation.json"


def test_absent_means_no_unfinished_rotation(marker: RotationMarker) -> None:
    assert marker.load() is None
    marker.clear()  # clearing nothing is fine
    assert marker.load() is None


def test_writes_merge_and_read_back(marker: RotationMarker) -> None:
    marker.write(environment="prod", started_at="2026-01-01T00:00:00+00:00", refreshed_at=None)
    marker.write(refreshed_at="2026-01-01T00:00:05+00:00", seen_starts={"a": 1})
    assert marker.load() == {
        "environment": "prod",
        "started_at": "2026-01-01T00:00:00+00:00",
        "refreshed_at": "2026-01-01T00:00:05+00:00",
        "seen_starts": {"a": 1},
    }
    # Private to its owner, and no temporary file is left beside it.
    assert stat.S_IMODE(marker.path.stat().st_mode) == 0o600
    assert [p.name for p in marker.path.parent.iterdir()] == [MARKER_NAME]
    marker.clear()
    assert marker.load() is None and not marker.path.exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", "\x00\x01"])
def test_an_unreadable_marker_still_means_unfinished(marker: RotationMarker, content: str) -> None:
    """Refreshing again while a rotation may be half done would revoke a live token: never guess."""
    marker.path.parent.mkdir(parents=True)
    marker.path.write_text(content)
    assert marker.load() == {"started_at": "unknown"}
    marker.write(environment="prod")  # a resume can still record its progress
    assert json.loads(marker.path.read_text()) == {"started_at": "unknown", "environment": "prod"}
