"""Where the sandbox must agree with the product it keeps its own copy, and these tests say so
(the sandbox imports nothing of the product but the seam: pyproject.toml's import contracts,
tests/test_layering.py). A bug in shared code would agree with itself; here a difference fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provisioner import cache_dir, secret
from provisioner import sandbox as sandbox_package
from provisioner.databricks import cluster_fields, runtimes, spark_conf
from provisioner.reach import endpoint
from provisioner.sandbox import files, mirror
from provisioner.sandbox import runtimes as sandbox_runtimes
from provisioner.sandbox.catalog import spark_versions
from provisioner.sandbox.provider import ENVIRON_ON_STDIN, PYTHON_ENV, SERVE_ONE_COMMAND, cluster_maps
from provisioner.sandbox.provider.__main__ import read_environ
from provisioner.terraform import guard

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


def test_the_sandbox_names_its_provider_server_by_the_variable_the_keeper_reads() -> None:
    assert mirror.PROVIDER_SERVER_ENV == guard.PROVIDER_SERVER_ENV


def test_the_keeper_reads_the_server_command_the_sandbox_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    command = guard.server_argv(mirror.build_mirror(tmp_path / "state")[mirror.PROVIDER_SERVER_ENV])
    assert command == [sys.executable, "-m", "provisioner.sandbox.provider", SERVE_ONE_COMMAND]
    # The launcher Terraform starts on its own runs the same module on the same interpreter.
    assert mirror.build_mirror(tmp_path / "state")[PYTHON_ENV] == command[0]
    assert '"${PROVISION_SANDBOX_PYTHON' in mirror.LAUNCHER and f"-m {command[2]} " in mirror.LAUNCHER
    # An interpreter path the format cannot carry gets no server: Terraform starts its providers itself.
    monkeypatch.setenv(PYTHON_ENV, "/opt/new\nline/python")
    assert mirror.PROVIDER_SERVER_ENV not in mirror.build_mirror(tmp_path / "state")


def test_an_early_server_reads_the_arguments_and_the_environment_the_keeper_hands_it(tmp_path: Path) -> None:
    """guard.py writes the blocks, the stand-in's `read_environ` reads them: one format, two copies."""
    assert ENVIRON_ON_STDIN == guard.ENVIRON_ON_STDIN
    environ = {"DATABRICKS_HOST": "https://x", "MULTI": "a=b\nc", "EMPTY": "", "UNICODE": "é"}
    blob = tmp_path / "blob"
    blob.write_bytes(guard.encode_setting("/some dir/é", environ) + b"trailing")
    with blob.open("rb") as stream:
        assert read_environ(stream.fileno()) == ("/some dir/é", environ)
        assert stream.read() == b"trailing"  # it reads its blocks and nothing after them
    blob.write_bytes(guard.encode_setting("/d", environ)[:-3])
    with blob.open("rb") as stream:
        assert read_environ(stream.fileno()) is None  # cut short: the keeper is gone


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


def test_the_stand_in_provider_knows_the_same_map_attributes() -> None:
    assert cluster_maps.MAP_FIELDS == cluster_fields.MAP_FIELDS


SPARK_CONFS: list[tuple[dict[str, str] | None, dict[str, str] | None]] = [
    (None, None),
    (None, {"a": "1"}),
    ({"a": "1"}, None),
    ({"a": "1"}, {}),
    ({}, None),
    ({"spark.databricks.delta.preview.enabled": "true"}, None),
    ({"spark.databricks.delta.preview.enabled": "true"}, {}),
    ({"spark.databricks.delta.preview.enabled": "true", "a": "1"}, {"a": "2"}),
    ({"a": "1"}, {"a": "1", "spark.databricks.delta.preview.enabled": "false"}),
    (None, {"spark.databricks.delta.preview.enabled": "true"}),
    ({"spark.databricks.delta.preview.enabled": "true"}, {"spark.databricks.delta.preview.enabled": "false"}),
]


@pytest.mark.parametrize(("prior", "planned"), SPARK_CONFS)
def test_the_stand_in_suppresses_the_spark_conf_diffs_status_ignores(
    prior: dict[str, str] | None, planned: dict[str, str] | None
) -> None:
    assert cluster_maps.DIFF_SUPPRESSED_SPARK_CONF == spark_conf.DIFF_SUPPRESSED_SPARK_CONF
    ours = cluster_maps.suppress_spark_conf_diff(prior, planned)
    assert ours == spark_conf.suppress_spark_conf_diff(prior, planned)
    # Every case is decided the same way by both, and the table covers both outcomes.
    if prior is not None and planned is not None and "spark.databricks.delta.preview.enabled" in prior:
        assert (
            ours is not None
            and ours["spark.databricks.delta.preview.enabled"] == prior["spark.databricks.delta.preview.enabled"]
        )


def _versions(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "name": name} for key, name in pairs]


# Catalogs a workspace may offer: the sandbox's own, and edge cases (no LTS, one major only,
# Beta/Photon/GPU/ML neighbours, two Scala builds of one release, an `x` minor, -esr- keys).
CATALOGS = [
    spark_versions(),
    _versions(
        ("16.4.x-scala2.12", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"),
        ("16.4.x-scala2.13", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"),
        ("17.0.x-scala2.13", "17.0 Beta (includes Apache Spark 4.0.0, Scala 2.13)"),
        ("15.4.x-photon-scala2.12", "15.4 LTS Photon (includes Apache Spark 3.5.0, Scala 2.12)"),
        ("15.4.x-gpu-ml-scala2.12", "15.4 LTS ML (GPU, Scala 2.12, Spark 3.5.0)"),
        ("15.4.x-cpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"),
        ("15.4.x-scala2.12", "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"),
        ("15.3.x-scala2.12", "15.3 (includes Apache Spark 3.5.0, Scala 2.12)"),
        ("apache-spark-2.4.x-scala2.11", "Light 2.4 (includes Apache Spark 2.4, Scala 2.11)"),
    ),
    _versions(("14.x-scala2.12", "14 (Scala 2.12)"), ("13.3.x-esr-scala2.12", "13.3 ESR (Scala 2.12)")),
    _versions(("17.3.x-scala2.13", "17.3 (includes Apache Spark 4.0.0, Scala 2.13)")),
    [],
]


@pytest.mark.parametrize("catalog", range(len(CATALOGS)))
@pytest.mark.parametrize("value", [*runtimes.SPECIAL_VALUES, "15.4.x-scala2.12", "auto:newest", ""])
def test_the_sandbox_resolves_a_policys_runtime_as_the_tool_does(catalog: int, value: str) -> None:
    versions = CATALOGS[catalog]
    assert sandbox_runtimes.SPECIAL_VALUES == runtimes.SPECIAL_VALUES
    assert sandbox_runtimes.is_special(value) == runtimes.is_special(value)
    if runtimes.is_special(value):
        assert sandbox_runtimes.resolve(value, versions) == runtimes.resolve(value, versions)
    for version in versions:
        key = version["key"]
        assert sandbox_runtimes.matches(key, value, versions) == runtimes.matches(key, value, versions)
        assert sandbox_runtimes.matches(key.upper(), value, versions) == runtimes.matches(key.upper(), value, versions)


def test_the_runtime_table_covers_every_outcome() -> None:
    """The cases above are worth comparing: some resolve to one key, some to two, some to none."""
    sizes = {len(runtimes.resolve(v, c)) for v in runtimes.SPECIAL_VALUES for c in CATALOGS}
    assert {0, 1, 2} <= sizes
