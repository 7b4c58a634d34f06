"""The stand-in provider's schema, as Terraform itself sees it, matches the real one.

`real_schema.json` is a snapshot of databricks/databricks v1.99.0 extracted from a pinned,
hashed artifact (scripts/extract_provider_schema.py). For every attribute and block the
stand-in implements, name, type, required/optional/computed, nesting and max_items must
be identical, and sensitivity too wherever the snapshot establishes it. The stand-in serves
every resource and data source of the snapshot (the ones it does not emulate refuse to act,
tests/sandbox/test_provider_whole_schema.py), never different or extra ones.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.mirror import build_mirror

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "provisioner/sandbox/provider/real_schema.json"
SOURCE = "registry.terraform.io/databricks/databricks"
ROOT_HCL = """
terraform {
  required_providers {
    databricks = { source = "databricks/databricks", version = "1.99.0" }
  }
}
"""


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return doc


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`terraform providers schema -json` for a root initialised offline through the mirror."""
    work = tmp_path_factory.mktemp("contract")
    (work / "main.tf").write_text(ROOT_HCL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(build_mirror(work / "state"), PYTHONPATH=str(REPO))
    for args in (["init", "-input=false", "-no-color"], ["providers", "schema", "-json"]):
        proc = subprocess.run(["terraform", *args], cwd=work, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    schema: dict[str, Any] = json.loads(proc.stdout)["provider_schemas"][SOURCE]
    return schema


def _flags(attr: dict[str, Any]) -> tuple[bool, bool, bool]:
    return bool(attr.get("required")), bool(attr.get("optional")), bool(attr.get("computed"))


def mismatches(block: dict[str, Any], real: dict[str, Any], where: str) -> list[str]:
    """Differences between a Terraform JSON schema block and a snapshot block."""
    problems: list[str] = []
    for name, attr in block.get("attributes", {}).items():
        expected = real["attributes"].get(name)
        at = f"{where}.{name}"
        if expected is None:
            problems.append(f"{at}: not an attribute of the real provider")
            continue
        if attr.get("type") != expected["type"]:
            problems.append(f"{at}: type {attr.get('type')} != {expected['type']}")
        want = (expected["required"], expected["optional"], expected["computed"])
        if want == (True, False, True):
            want = (False, True, True)  # snapshot.py `_attribute`: Terraform refuses required+computed
        if _flags(attr) != want:
            problems.append(f"{at}: required/optional/computed {_flags(attr)} != {want}")
        if expected["sensitive"] is not None and bool(attr.get("sensitive")) != expected["sensitive"]:
            problems.append(f"{at}: sensitive {bool(attr.get('sensitive'))} != {expected['sensitive']}")
    for name, nested in block.get("block_types", {}).items():
        expected = real["blocks"].get(name)
        at = f"{where}.{name}"
        if expected is None:
            problems.append(f"{at}: not a block of the real provider")
            continue
        if nested["nesting_mode"] != expected["nesting"]:
            problems.append(f"{at}: nesting {nested['nesting_mode']} != {expected['nesting']}")
        # SINGLE nesting: a required block is min=max=1 to Terraform, the snapshot says min 1 only.
        want_max = 1 if expected["nesting"] == "single" and expected["min_items"] == 1 else expected["max_items"]
        if nested.get("max_items") != want_max:
            problems.append(f"{at}: max_items {nested.get('max_items')} != {want_max}")
        problems += mismatches(nested["block"], expected, at)
    return problems


def all_mismatches(standin: dict[str, Any], snapshot: dict[str, Any]) -> list[str]:
    problems = mismatches(standin["provider"]["block"], snapshot["provider"], "provider")
    for served, section in (("resource_schemas", "resources"), ("data_source_schemas", "data_sources")):
        for name, schema in standin.get(served, {}).items():
            real = snapshot[section].get(name)
            if real is None:
                problems.append(f"{name}: not in the snapshot's {section}")
                continue
            problems += mismatches(schema["block"], real, name)
            problems += [f"{name}.{m}: missing" for m in missing(schema["block"], real)]
    return problems


def missing(block: dict[str, Any], real: dict[str, Any]) -> list[str]:
    """Attributes and blocks of the real schema the stand-in's block lacks."""
    gone = [n for n in real["attributes"] if n not in block.get("attributes", {})]
    for name, nested in real["blocks"].items():
        served = block.get("block_types", {}).get(name)
        gone += [name] if served is None else [f"{name}.{m}" for m in missing(served["block"], nested)]
    return gone


def test_snapshot_is_pinned_to_the_real_provider(snapshot: dict[str, Any]) -> None:
    provenance = snapshot["provenance"]
    assert provenance["provider_version"] == "1.99.0"
    assert provenance["wheel"] == "cdktf_cdktf_provider_databricks-15.16.1-py3-none-any.whl"
    assert len(provenance["wheel_sha256"]) == 64


def test_standin_serves_every_resource_and_data_source_of_the_real_provider(
    standin: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    assert set(standin["resource_schemas"]) == set(snapshot["resources"])
    assert set(standin["data_source_schemas"]) == set(snapshot["data_sources"])
    assert len(snapshot["resources"]) > 100 and len(snapshot["data_sources"]) > 100
    cluster = standin["resource_schemas"]["databricks_cluster"]["block"]
    assert {
        "cluster_id",
        "spark_version",
        "instance_pool_id",
        "ssh_public_keys",
        "enable_local_disk_encryption",
    } <= set(cluster["attributes"])
    assert {"autoscale", "library", "azure_attributes", "init_scripts", "cluster_log_conf", "docker_image"} <= set(
        cluster["block_types"]
    )
    assert cluster["block_types"]["timeouts"]["nesting_mode"] == "single"


def test_standin_schema_matches_the_real_provider(standin: dict[str, Any], snapshot: dict[str, Any]) -> None:
    assert all_mismatches(standin, snapshot) == []


def test_sensitive_values_are_sensitive(standin: dict[str, Any]) -> None:
    # Checked by the comparison too; spelled out because these are the ones that leak.
    assert standin["provider"]["block"]["attributes"]["token"]["sensitive"] is True
    secret = standin["resource_schemas"]["databricks_secret"]["block"]["attributes"]
    assert secret["string_value"]["sensitive"] is True


MUTATIONS = {
    "required flipped": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["attributes"][
        "spark_version"
    ].update(required=None, optional=True),
    "type changed": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["attributes"]["num_workers"].update(
        type="string"
    ),
    "computed dropped": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["attributes"]["cluster_id"].pop(
        "computed"
    ),
    "sensitivity dropped": lambda s: s["resource_schemas"]["databricks_secret"]["block"]["attributes"][
        "string_value"
    ].pop("sensitive"),
    "token not sensitive": lambda s: s["provider"]["block"]["attributes"]["token"].pop("sensitive"),
    "attribute renamed": lambda s: s["resource_schemas"]["databricks_secret_scope"]["block"]["attributes"].update(
        scope_name=s["resource_schemas"]["databricks_secret_scope"]["block"]["attributes"].pop("name")
    ),
    "block as set": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["block_types"]["autoscale"].update(
        nesting_mode="set"
    ),
    "block max_items": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["block_types"]["autoscale"].pop(
        "max_items"
    ),
    "attribute dropped": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["attributes"].pop(
        "ssh_public_keys"
    ),
    "nested block dropped": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["block_types"]["library"][
        "block"
    ]["block_types"].pop("maven"),
    "data source attribute": lambda s: s["data_source_schemas"]["databricks_spark_version"]["block"]["attributes"][
        "long_term_support"
    ].update(type="string"),
    "nested type": lambda s: s["resource_schemas"]["databricks_cluster"]["block"]["block_types"]["autoscale"]["block"][
        "attributes"
    ]["min_workers"].update(type="string"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_any_change_is_caught(mutation: str, standin: dict[str, Any], snapshot: dict[str, Any]) -> None:
    changed = copy.deepcopy(standin)
    MUTATIONS[mutation](changed)
    assert all_mismatches(changed, snapshot) != []
