"""provision.yaml: loading, overlays, and one clear line for every kind of bad input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.config.model import load_config
from provisioner.errors import ConfigError
from tests.helpers.config import BASE_CONFIG, merge


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "provision.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def error_for(tmp_path: Path, doc: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, doc), environ={})
    message = str(info.value)
    # One line per problem (a config may have more than the one a test plants), each naming the file.
    assert all(line.startswith(str(tmp_path / "provision.yaml")) for line in message.split("\n")), message
    return message


def test_example_config_loads_with_two_environments() -> None:
    cfg = load_config(Path(__file__).parents[2] / "examples" / "provision.yaml", environ={})
    assert list(cfg.environments) == ["dev", "prod"]
    dev, prod = cfg.environments["dev"], cfg.environments["prod"]
    assert dev.aep.sandbox == "dev" and prod.aep.sandbox == "prod"
    assert dev.databricks_host != prod.databricks_host
    assert [c.name for c in dev.clusters] == ["aep-ingest", "aep-explore"]
    assert dev.clusters[0].autoscale == (1, 4)
    assert dev.root_dir == (Path(__file__).parents[2] / "terraform" / "dev").resolve()


def test_defaults_and_single_default_environment(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    del doc["sas"], doc["terraform"]
    cfg = load_config(write(tmp_path, doc), environ={})
    (env,) = cfg.select()
    assert env.name == "default"
    assert env.sas.mode == "secret_scope" and env.sas.warn_days == 7
    assert env.aep.platform_url == "https://platform.adobe.io"
    assert env.backend.type == "local"
    assert env.root_dir == (tmp_path / "terraform" / "default").resolve()


def test_overlay_deep_merges_and_replaces_lists(tmp_path: Path) -> None:
    doc = merge(
        BASE_CONFIG,
        {
            "environments": {
                "dev": {
                    "aep": {"sandbox": "dev"},
                    "clusters": [{"name": "solo", "spark_version": "15.4.x-scala2.12", "num_workers": 1}],
                },
                "prod": {},
            }
        },
    )
    cfg = load_config(write(tmp_path, doc), environ={})
    dev, prod = cfg.environments["dev"], cfg.environments["prod"]
    assert dev.aep.sandbox == "dev" and dev.aep.org_id == prod.aep.org_id
    assert [c.name for c in dev.clusters] == ["solo"]
    assert [c.name for c in prod.clusters] == ["aep-ingest", "aep-explore"]


def test_databricks_host_env_overrides_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE_CONFIG), environ={"DATABRICKS_HOST": "https://adb-9.9.azuredatabricks.net/"})
    assert cfg.select()[0].databricks_host == "https://adb-9.9.azuredatabricks.net"


def test_databricks_max_parallel_is_optional_and_bounded(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE_CONFIG), environ={}).select()[0].databricks_max_parallel is None
    doc = merge(BASE_CONFIG, {"databricks": {"max_parallel": 8}})
    assert load_config(write(tmp_path, doc), environ={}).select()[0].databricks_max_parallel == 8
    too_many = merge(BASE_CONFIG, {"databricks": {"max_parallel": 500}})
    assert "databricks.max_parallel: 500 is out of range (maximum 64)" in error_for(tmp_path, too_many)


def test_select_requires_env_when_several(tmp_path: Path) -> None:
    doc = merge(BASE_CONFIG, {"environments": {"dev": {}, "prod": {}}})
    cfg = load_config(write(tmp_path, doc), environ={})
    with pytest.raises(ConfigError, match="--env NAME"):
        cfg.select()
    with pytest.raises(ConfigError, match=r"environments\.stage: no such environment"):
        cfg.select("stage")
    assert len(cfg.select(all_envs=True)) == 2


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ({"aep": {"org_id": "not-an-org"}}, 'aep.org_id: "not-an-org" is not valid — expected an IMS org id'),
        ({"aep": {"sandbox": 7}}, "aep.sandbox: 7 is the wrong type — expected string"),
        ({"aep": {"colour": "blue"}}, "aep.colour: unknown key — remove it, or use one of: client_id"),
        ({"extra": 1}, "extra: unknown key — remove it, or use one of: aep,"),
        ({"databricks": {"host": "http://plain.example.com"}}, "databricks.host:"),
        ({"sas": {"mode": "file"}}, 'sas.mode: "file" is not allowed — expected one of secret_scope, inline'),
        ({"clusters": []}, "clusters: value is out of range"),
        ({"clusters": [{"name": "../evil", "spark_version": "15.4.x-scala2.12"}]}, "clusters[0].name:"),
        ({"clusters": [{"name": "a/b", "spark_version": "15.4.x-scala2.12"}]}, "clusters[0].name:"),
        ({"clusters": [{"name": "ok"}]}, "clusters[0]: 'spark_version' is required here"),
        (
            {
                "clusters": [
                    {
                        "name": "ok",
                        "spark_version": "15.4.x-scala2.12",
                        "num_workers": 1,
                        "autoscale": {"min_workers": 1, "max_workers": 2},
                    }
                ]
            },
            "exclude each other",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "ok",
                        "spark_version": "15.4.x-scala2.12",
                        "autoscale": {"min_workers": 5, "max_workers": 2},
                    }
                ]
            },
            "min_workers 5 is above max_workers 2",
        ),
        ({"clusters": [{"name": "count", "spark_version": "15.4.x-scala2.12"}]}, "reserved word"),
        (
            {
                "clusters": [
                    {"name": "x", "spark_version": "15.4.x-scala2.12", "num_workers": 1},
                    {"name": "x", "spark_version": "15.4.x-scala2.12", "num_workers": 1},
                ]
            },
            "appears twice",
        ),
        ({"terraform": {"backend": {"type": "s3"}}}, "terraform.backend:"),
    ],
)
def test_bad_values_give_one_line_naming_key_and_expectation(
    tmp_path: Path, overlay: dict[str, Any], expected: str
) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    for key, value in overlay.items():
        doc[key] = merge(doc[key], value) if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
    assert expected in error_for(tmp_path, doc)


def test_missing_required_section(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    del doc["aep"]
    assert "'aep' is required here" in error_for(tmp_path, doc)


@pytest.mark.parametrize(
    ("overlay", "where"),
    [
        ({"aep": {"client_secret": "shh"}}, "aep.client_secret: secrets do not belong"),
        ({"databricks": {"token": "dapi0123"}}, "databricks.token: secrets do not belong"),
        ({"terraform": {"backend": {"type": "pg", "conn_str": "postgres://u:p@h/db"}}}, "terraform.backend.conn_str"),
    ],
)
def test_secret_keys_in_yaml_are_refused(tmp_path: Path, overlay: dict[str, Any], where: str) -> None:
    assert where in error_for(tmp_path, merge(BASE_CONFIG, overlay))


def test_secret_values_in_yaml_are_refused(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["clusters"][0]["spark_conf"]["fs.azure.sas.c.a.blob.core.windows.net"] = "sv=2020&sig=abcdEFGH1234%3D"
    message = error_for(tmp_path, doc)
    assert "clusters[0].spark_conf" in message and "a SAS token" in message
    assert "abcdEFGH1234" not in message


def test_user_may_not_set_the_dlz_key_itself(tmp_path: Path) -> None:
    """The DLZ entry is the tool's (issue 27: refused at load, before any AEP call), whatever
    container and account it names — they are known only from AEP's credentials."""
    for key in (
        "fs.azure.sas.dlz-databricks-container.acct1.blob.core.windows.net",
        "fs.azure.sas.other-container.other.blob.core.windows.net",
    ):
        doc = copy.deepcopy(BASE_CONFIG)
        doc["clusters"][0]["spark_conf"][key] = "x"
        message = error_for(tmp_path, doc)
        assert f"clusters[0].spark_conf.{key}:" in message
        assert "managed by dlz-provisioner" in message and "remove this key" in message
        assert not (tmp_path / "terraform").exists()


def test_env_names_must_be_safe(tmp_path: Path) -> None:
    for bad in ("../up", "a/b", "/abs", "UPPER", "terraform"):
        message = error_for(tmp_path, merge(BASE_CONFIG, {"environments": {bad: {}}}))
        assert "not a safe environment name" in message
        assert not (tmp_path / "terraform").exists()


def test_overlay_error_names_the_environment(tmp_path: Path) -> None:
    message = error_for(tmp_path, merge(BASE_CONFIG, {"environments": {"dev": {"aep": {"sandbox": "Bad Name"}}}}))
    assert "environments.dev.aep.sandbox" in message


def test_not_yaml_mapping_and_syntax_errors(tmp_path: Path) -> None:
    assert "must be a YAML mapping" in error_for(tmp_path, "- a\n- b\n")
    assert "invalid YAML" in error_for(tmp_path, "aep: [unclosed\n")
    assert "duplicate key 'aep'" in error_for(tmp_path, "aep: {}\naep: {}\n")


def test_wrong_encoding_huge_file_and_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "provision.yaml"
    path.write_bytes("aep: {org_id: \u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, environ={})
    path.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="must be under"):
        load_config(path, environ={})
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    path.write_text("\n".join(bomb) + "\n")
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_shipped_schema_is_a_valid_json_schema() -> None:
    # load_config skips check_schema() at run time (start-up cost); the schema is checked here.
    import json

    import jsonschema

    import provisioner.config.model

    schema = json.loads(Path(provisioner.config.model.__file__).with_name("provision.schema.json").read_text())
    jsonschema.validators.validator_for(schema).check_schema(schema)


def _load_in_fresh_process(path: Path, home: Path) -> tuple[int, str]:
    import subprocess
    import sys

    code = (
        "import sys; from provisioner.config.model import load_config\n"
        f"try:\n    load_config({str(path)!r}, environ={{}})\nexcept Exception as e:\n    print('ERR', e)\n"
        "print('jsonschema' in sys.modules)"
    )
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")},
    )
    return done.returncode, done.stdout


def test_a_valid_config_loads_without_jsonschema_and_writes_nothing(tmp_path: Path) -> None:
    """Start-up stays fast without a cache on disk: the fast path decides, nothing is written."""
    path = write(tmp_path, BASE_CONFIG)
    home = tmp_path / "home"
    for _ in range(2):
        assert _load_in_fresh_process(path, home) == (0, "False\n")
    assert list(home.iterdir()) == []


def test_an_invalid_config_is_explained_by_jsonschema(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["aep"]["sandbox"] = "Not Valid"
    out = _load_in_fresh_process(write(tmp_path, doc), tmp_path / "home")[1]
    assert "ERR" in out and "aep.sandbox" in out and out.endswith("True\n")


def test_non_json_yaml_values_are_refused(tmp_path: Path) -> None:
    """A YAML date is not the string it is spelled as: the fast path defers, jsonschema names it."""
    doc = copy.deepcopy(BASE_CONFIG)
    doc["aep"]["sandbox"] = "2024-01-01"
    path = write(tmp_path, doc)
    assert _load_in_fresh_process(path, tmp_path / "home") == (0, "False\n")
    path.write_text(path.read_text().replace("'2024-01-01'", "2024-01-01"))
    out = _load_in_fresh_process(path, tmp_path / "home")[1]
    assert "ERR" in out and "aep.sandbox" in out and "wrong type" in out


MODERN = {
    "name": "modern",
    "spark_version": "16.4.x-scala2.12",
    "node_type_id": "Standard_DS3_v2",
    "kind": "CLASSIC_PREVIEW",
    "is_single_node": True,
    "use_ml_runtime": True,
    "data_security_mode": "DATA_SECURITY_MODE_DEDICATED",
    "single_user_name": "ana@example.com",
}


def test_todays_cluster_spec_is_accepted(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["clusters"] = [MODERN]
    (env,) = load_config(write(tmp_path, doc), environ={}).environments.values()
    cluster = env.clusters[0]
    assert (cluster.kind, cluster.is_single_node, cluster.use_ml_runtime) == ("CLASSIC_PREVIEW", True, True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"single_user_name": None}, "clusters[0].single_user_name: data_security_mode DATA_SECURITY_MODE_DEDICATED"),
        ({"data_security_mode": "SINGLE_USER", "single_user_name": None}, "clusters[0].single_user_name:"),
        ({"kind": None}, "clusters[0].data_security_mode: DATA_SECURITY_MODE_DEDICATED needs kind"),
        ({"kind": None, "data_security_mode": None}, "clusters[0].is_single_node: needs kind"),
        ({"is_single_node": None}, "clusters[0].num_workers: 0 workers is only valid for a single-node cluster"),
        ({"is_single_node": False, "num_workers": 0}, "clusters[0].num_workers: 0 workers"),
        ({"num_workers": 2}, "clusters[0].is_single_node: a single-node cluster has no workers"),
        ({"data_security_mode": "DATA_SECURITY_MODE_STANDARD"}, "fs.azure.sas.* entry is not used"),
        ({"data_security_mode": "USER_ISOLATION"}, "clusters[0].data_security_mode: USER_ISOLATION: standard access"),
        # Databricks picks standard unless ML, GPU or a runtime below 14.3 (issue 22 item 4).
        ({"data_security_mode": "DATA_SECURITY_MODE_AUTO"}, "data_security_mode: DATA_SECURITY_MODE_AUTO lets"),
    ],
)
def test_cluster_spec_needs_what_the_api_needs(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    cluster = {k: v for k, v in {**MODERN, **change}.items() if v is not None}
    doc = copy.deepcopy(BASE_CONFIG)
    doc["clusters"] = [cluster]
    message = error_for(tmp_path, doc)
    assert expected in message and message.count("\n") == 0


def test_legacy_single_node_settings_allow_zero_workers(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE_CONFIG)
    doc["clusters"] = [
        {
            "name": "legacy",
            "spark_version": "15.4.x-scala2.12",
            "num_workers": 0,
            "spark_conf": {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
            "custom_tags": {"ResourceClass": "SingleNode"},
        }
    ]
    assert load_config(write(tmp_path, doc), environ={}).environments


def test_a_backend_block_is_explained_by_the_branch_its_type_names(tmp_path: Path) -> None:
    """Every error at once (issue 27) must not add a vague 'type pg is unknown' beside the real one."""
    bad_key = merge(BASE_CONFIG, {"terraform": {"backend": {"type": "pg", "schemaname": "tf"}}})
    (line,) = error_for(tmp_path, bad_key).split("\n")
    assert "terraform.backend.schemaname: unknown key" in line and "schema_name" in line
    unknown = merge(BASE_CONFIG, {"terraform": {"backend": {"type": "s3"}}})
    assert "backend type 's3' is unknown" in error_for(tmp_path, unknown)
