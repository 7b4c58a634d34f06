"""After `provision sandbox expire`, every line says what is wrong in plain words with the one
command that fixes it, and no two lines contradict each other.

Before: the SAS column said `current` beside DLZ `NO`, the secret "still hold(s)" the old
token, each cluster had a bare "cannot reach the DLZ" and the secret's problem repeated the
ROTATION NEEDED line; `rotate --if-expiring-within 7` then reported "after the resume" and
"rotation finished" though no resume ran, and then "rotated onto …" as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.project import applied, make_project


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_status_after_expiry_says_what_is_wrong_and_the_fix_per_row(tmp_path: Path, mode: str) -> None:
    project = applied(make_project(tmp_path, mode))
    assert project.run("sandbox", "expire", "--env", "default").returncode == 0

    table = project.run("status")

    assert table.returncode == 4, table.stderr
    out = table.stdout
    assert "hold(s)" not in out
    rows = {m.group(1): m.groups() for m in re.finditer(r"^(aep-\S+)\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.M)}
    assert set(rows) == {"aep-ingest", "aep-explore"}
    # SAS column: the entry reads the revoked token (not `current`), and the DLZ answers NO.
    assert {r[1:] for r in rows.values()} == {("RUNNING", "revoked", "NO")}
    for name in rows:
        (problem,) = [line for line in out.splitlines() if line.startswith(f"  ! {name}: ")]
        assert "cannot reach the DLZ" in problem and "revoked" in problem
        assert problem.endswith("— run `provision rotate`"), problem
    # One line says rotation is needed; nothing repeats it.
    assert len([line for line in out.splitlines() if "no longer honours" in line]) == 1

    rotated = project.run("rotate", "--if-expiring-within", "7", "--auto-approve")

    assert rotated.returncode == 0, rotated.stderr
    said = rotated.stdout + rotated.stderr
    assert "resume" not in said, said
    assert "default: 2/2 running clusters reach the DLZ" in said  # the closing probe
    # One closing line for the rotation, not "rotation finished" and then "rotated onto …".
    assert len([line for line in said.splitlines() if "rotat" in line and line.startswith("✓")]) == 1, said
    healthy = project.run("status")
    assert healthy.returncode == 0, healthy.stdout
    assert {m.group(1) for m in re.finditer(r"^aep-\S+\s+\S+\s+RUNNING\s+(\S+)\s+yes$", healthy.stdout, re.M)} == {
        "current"
    }
