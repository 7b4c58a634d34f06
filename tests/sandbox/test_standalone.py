"""Where the sandbox must agree with the product it keeps its own copy, and these tests say so
(the sandbox imports nothing of the product but the seam: pyproject.toml's import contracts,
tests/test_layering.py). A bug in shared code would agree with itself; here a difference fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import cache_dir, secret
from provisioner import sandbox as sandbox_package
from provisioner.reach import endpoint
from provisioner.sandbox import files

TOKENS = [
    "sv=2023-11-03&ss=b&srt=co&sp=rwdlac&se=2026-03-01T00:00:00Z&sig=AbC%2Bd/E=",
    "se=2026&SIG=upper-case_name&sv=1",
    "no signature here",
    "sig=&sv=1",
    "https://a.blob.core.windows.net/c?sv=1&sig=x%3D%3D&sp=r",
]


@pytest.mark.parametrize("token", TOKENS)
def test_the_sandbox_hides_a_signature_as_the_product_does(token: str) -> None:
    assert files.mask_sas(token) == secret.mask_sas(token)


def test_the_sandbox_serves_blob_hosts_through_the_variable_the_product_reads() -> None:
    assert sandbox_package.BLOB_HOSTS_ENV == endpoint.BLOB_HOSTS_ENV


@pytest.mark.parametrize(
    "environ",
    [{"HOME": "/home/u"}, {"HOME": "/home/u", "XDG_CACHE_HOME": "/var/cache/x"}, {"XDG_CACHE_HOME": "/c"}],
)
def test_azurite_is_looked_for_in_the_tools_cache(environ: dict[str, str]) -> None:
    """.ci/run installs Azurite under the tool's cache directory; the sandbox finds it there."""
    assert files.tool_cache_dir(environ) == cache_dir.tool_cache_dir(environ)


def test_the_sandbox_replaces_a_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    files.atomic_write(target, "one", mode=0o600)
    files.atomic_write(target, "two", mode=0o600)
    assert target.read_text() == "two" and (target.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left
