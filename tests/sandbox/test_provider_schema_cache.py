"""The stand-in's schema answer, kept between its processes (provisioner/sandbox/provider/schema_cache.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import tf.provider
from tf.gen import tfplugin_pb2 as pb

from provisioner.sandbox.provider import SCHEMA_CACHE_ENV, schema_cache
from provisioner.sandbox.provider.provider import DatabricksProvider
from provisioner.sandbox.provider.schema_cache import schema_answer

parse = pb.GetProviderSchema.Response.FromString


class Builds:
    """The real answer (tf's servicer on the stand-in), counting how often it was built."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        answer = tf.provider.ProviderServicer(DatabricksProvider()).GetProviderSchema(
            pb.GetProviderSchema.Request(), None
        )
        answer.server_capabilities.get_provider_schema_optional = True
        return answer


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "provider-schema"
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(directory))
    return directory


def test_the_answer_is_built_once_and_read_back_equal(cache: Path) -> None:
    build = Builds()
    first = schema_answer(build, parse)
    second = schema_answer(build, parse)
    assert build.count == 1
    assert second == first
    assert second.server_capabilities.get_provider_schema_optional
    assert "databricks_cluster" in second.resource_schemas
    [kept] = cache.iterdir()
    assert kept.stat().st_mode & 0o777 == 0o600


def test_a_corrupt_answer_is_built_again_not_served(cache: Path) -> None:
    build = Builds()
    good = schema_answer(build, parse)
    [kept] = cache.iterdir()
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF  # protobuf would parse many such files without an error
    kept.write_bytes(bytes(data))
    assert schema_answer(build, parse) == good
    assert build.count == 2
    assert schema_answer(build, parse) == good
    assert build.count == 2  # the rebuilt answer replaced the corrupt one


def test_changed_code_builds_a_new_answer_and_drops_the_old(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = Builds()
    schema_answer(build, parse)
    [old] = cache.iterdir()
    monkeypatch.setattr(schema_cache, "fingerprint", lambda: "another-version")
    schema_answer(build, parse)
    assert build.count == 2
    assert [p.name for p in cache.iterdir()] == ["schema-another-version.pb"]
    assert not old.exists()


def test_the_fingerprint_follows_the_sandbox_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "sandbox"
    code.mkdir()
    module = code / "cluster.py"
    module.write_text("A = 1\n")
    monkeypatch.setattr(schema_cache, "_SANDBOX", code)
    before = schema_cache.fingerprint()
    assert schema_cache.fingerprint() == before
    module.write_text("A = 12\n")
    assert schema_cache.fingerprint() != before
    changed = schema_cache.fingerprint()
    os.utime(module, ns=(1, 1))
    assert schema_cache.fingerprint() != changed


def test_without_the_sandbox_environment_nothing_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCHEMA_CACHE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    build = Builds()
    schema_answer(build, parse)
    schema_answer(build, parse)
    assert build.count == 2
    assert list(tmp_path.iterdir()) == []


def test_an_answer_with_diagnostics_is_not_kept(cache: Path) -> None:
    def failing() -> Any:
        return pb.GetProviderSchema.Response(diagnostics=[pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary="x")])

    schema_answer(failing, parse)
    assert not cache.exists() or list(cache.iterdir()) == []
