"""The artifacts: `python -m build` makes the sdist and wheel, `twine check` accepts both, and
the wheel carries the templates and the JSON schema but no tests."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from tests.helpers.config import REPO
from tests.helpers.install import BIN, run


def test_build_and_twine_check_pass_and_the_wheel_carries_the_templates(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    checked = run([str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)], dist, os.environ)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(p.name for p in (REPO / "templates").glob("*.j2"))
    assert templates and all(f"provisioner/templates/{t}" in names for t in templates)
    assert "provisioner/config/provision.schema.json" in names
    assert not [n for n in names if n.startswith(("tests/", "templates/")) or "/share/" in n]
