"""Guarantee: an OAuth M2M identity leaks nothing either — not its client secret, not the
access tokens the workspace issues for it, not the PAT `connect` mints for AEP.

One sandbox project runs plan, apply, status, rotate and connect with DATABRICKS_CLIENT_ID +
DATABRICKS_CLIENT_SECRET only (no PAT anywhere), plus ARM_* for a backend, every run watched
by the /proc argv sampler. The issued access tokens and the minted PAT exist only inside the
emulator (the store keeps digests), so they are matched by shape: the emulator issues OAuth
tokens as `dose-sbx-…` and PATs as `dapi` + 32 hex digits.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.config import BASE_CONFIG
from tests.helpers.leaks import Needles
from tests.helpers.processes import Sampled, run_sampled
from tests.helpers.project import Project, new_project

SP_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SP_SECRET = "dose-OAUTHclient0secret0POIUYT"
ARM_SECRET = "arm-BACKENDsecret0value0MNBVCX"
SHAPES = {
    "OAuth access token": re.compile(r"dose-sbx-[A-Za-z0-9_\-]{20,}"),
    "minted PAT": re.compile(r"dapi[0-9a-f]{32}"),
}


def scan(needles: Needles, text: str, where: str) -> list[str]:
    hits = needles.scan_text(text, where)
    hits += [f"{label} in {where}" for label, shape in SHAPES.items() if shape.search(text)]
    return hits


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, Sampled]]:
    project = new_project(
        tmp_path_factory.mktemp("oauth-leaks"),
        BASE_CONFIG,
        ARM_CLIENT_ID="11111111-2222-3333-4444-555555555555",
        ARM_CLIENT_SECRET=ARM_SECRET,
        ARM_TENANT_ID="99999999-8888-7777-6666-555555555555",
        DATABRICKS_CLIENT_ID=SP_ID,
        DATABRICKS_CLIENT_SECRET=SP_SECRET,
    )
    env = project.env()
    del env["DATABRICKS_TOKEN"]
    out: dict[str, Sampled] = {}
    for name, argv in {
        "plan": ("plan",),
        "apply": ("apply", "--auto-approve"),
        "status": ("status", "--json"),
        "rotate": ("rotate", "--auto-approve", "--timeout", "60"),
        "connect": ("connect", "--cluster", "aep-ingest", "--timeout", "60"),
    }.items():
        out[name] = run_sampled(project, *argv, env=env)
    return project, out


def needles(project: Project) -> Needles:
    found = Needles()
    found.add("OAuth client secret", SP_SECRET)
    found.add("ARM client secret", ARM_SECRET)
    found.add_from_store(project.store())
    return found


def test_every_run_succeeded_with_oauth_only(runs: tuple[Project, dict[str, Sampled]]) -> None:
    _, sampled = runs
    codes = {name: s.result.returncode for name, s in sampled.items()}
    assert codes == {"plan": 2, "apply": 0, "status": 0, "rotate": 0, "connect": 0}, {
        n: s.output[-1500:] for n, s in sampled.items() if s.result.returncode not in (0, 2)
    }
    assert "(oauth-m2m)" in sampled["plan"].result.stderr
    # The minted PAT really exists (so its shape is worth scanning for).
    project, _ = runs
    (connection,) = project.store().connections()
    assert SHAPES["minted PAT"].fullmatch(connection["auth"]["params"]["accessToken"])


def test_no_oauth_secret_or_token_in_output_or_argv(runs: tuple[Project, dict[str, Sampled]]) -> None:
    project, sampled = runs
    found = needles(project)
    hits: list[str] = []
    for name, run in sampled.items():
        hits += scan(found, run.output, f"output of {name}")
        for argv in run.cmdlines:
            hits += scan(found, "\0".join(argv), f"argv of {argv[0]} during {name}")
    assert not hits, hits


def test_no_oauth_secret_or_token_in_any_file(runs: tuple[Project, dict[str, Sampled]]) -> None:
    project, _ = runs
    found = needles(project)
    hits: list[str] = []
    skip = set(project.sandbox_dir.glob("state.db*"))  # the sandbox's database (store/records.py)
    for path in project.dir.rglob("*"):
        if path.is_file() and path not in skip and not path.is_symlink():
            text = path.read_bytes().decode("utf-8", "replace")
            hits += [h for h in scan(found, text, str(path.relative_to(project.dir))) if not h.startswith("sas#")]
    assert not hits, hits


def test_the_sandbox_keeps_only_digests_of_oauth_credentials(runs: tuple[Project, dict[str, Sampled]]) -> None:
    """(The stored connection keeps its accessToken: AEP holds it, and tests check what was sent.)"""
    project, _ = runs
    text = json.dumps(project.store().snapshot())
    assert SP_SECRET not in text
    assert not SHAPES["OAuth access token"].search(text)
