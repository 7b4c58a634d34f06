"""Guarantee: the HCL we generate matches the real `databricks/databricks` provider's schema.

`provisioner/sandbox/provider/real_schema.json` is a snapshot of the real provider 1.99.0's
schema, extracted from a published artifact (its `provenance` says which). This test renders a
maximal config — every optional cluster field of provision.schema.json, autoscale and
num_workers, both SAS modes, an import — parses the generated files with an HCL parser of its
own (python-hcl2, independent of our renderer and of the sandbox's stand-in provider), and
checks every resource type, attribute and block against the snapshot: it exists, is
settable (not computed-only), has a compatible type, nesting limits hold, required
attributes are present, and the SAS token only reaches attributes that are sensitive or
carries the sensitivity of its variable. (The stand-in's own schema is checked against the
same snapshot in tests/sandbox/test_provider_contract.py.)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from provisioner.config.model import load_config
from provisioner.render.root import PROVIDER_CONSTRAINT, DlzTarget, render_root
from provisioner.sas.inline import SAS_VARIABLE
from tests.helpers.config import BASE_CONFIG

REPO = Path(__file__).resolve().parents[2]
REAL = json.loads((REPO / "provisioner/sandbox/provider/real_schema.json").read_text())
CONFIG_SCHEMA = json.loads((REPO / "provisioner/config/provision.schema.json").read_text())
META_ARGUMENTS = {"depends_on", "count", "for_each", "lifecycle", "provider"}
DLZ = DlzTarget("dlz-databricks-container", "sndbxdtln0123456789abcde")

MAXIMAL_CLUSTERS = [
    {
        "name": "everything",
        "cluster_name": "Everything set",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "driver_node_type_id": "Standard_DS4_v2",
        "autoscale": {"min_workers": 1, "max_workers": 4},
        "autotermination_minutes": 60,
        "data_security_mode": "SINGLE_USER",
        "single_user_name": "someone@example.com",
        "runtime_engine": "PHOTON",
        "policy_id": "ABCDEF0123456789",
        "is_pinned": True,
        "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
        "spark_env_vars": {"PYSPARK_PYTHON": "/databricks/python3/bin/python3"},
        "custom_tags": {"team": "data"},
        "import_id": "0101-010101-abcdefgh",
    },
    {"name": "fixed", "spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2},
    {
        "name": "modern",
        "spark_version": "16.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "kind": "CLASSIC_PREVIEW",
        "is_single_node": True,
        "use_ml_runtime": False,
        "data_security_mode": "DATA_SECURITY_MODE_DEDICATED",
        "single_user_name": "someone@example.com",
    },
]


def render(tmp_path: Path, mode: str) -> dict[str, str]:
    config = copy.deepcopy(BASE_CONFIG)
    config["clusters"] = MAXIMAL_CLUSTERS
    config["sas"] = {"mode": mode, "secret_scope": "aep-dlz", "secret_key": "dlz-sas-token"}
    if mode == "secret_scope":  # every optional sas field that reaches HCL
        config["sas"].update(readers=["data-engineers", "alice@example.com"], initial_manage_principal="users")
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    (env,) = load_config(path, environ={}).environments.values()
    return {name: text for name, text in render_root(env, DLZ, path).files.items() if name.endswith(".tf")}


# ---- a small checker over python-hcl2's output -----------------------------------------------


def unquote(label: str) -> str:
    return label[1:-1] if label.startswith('"') and label.endswith('"') else label


def is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def body_items(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("__")}


class Checker:
    def __init__(self, files: dict[str, str]) -> None:
        self.docs = {name: hcl2.loads(text) for name, text in files.items()}
        self.problems: list[str] = []
        self.variables = {
            unquote(name): body
            for doc in self.docs.values()
            for item in doc.get("variable", [])
            for name, body in item.items()
        }
        self.resources = [
            (unquote(rtype), unquote(rname), body)
            for doc in self.docs.values()
            for item in doc.get("resource", [])
            for rtype, named in item.items()
            for rname, body in named.items()
        ]

    def check(self) -> list[str]:
        for rtype, rname, body in self.resources:
            schema = REAL["resources"].get(rtype)
            if schema is None:
                self.problems.append(f"resource type {rtype} is not in the real provider")
                continue
            self._check_body(f"{rtype}.{rname}", body, schema)
        for doc in self.docs.values():
            for item in doc.get("provider", []):
                for name, body in item.items():
                    self._check_provider(unquote(name), body)
            for block in doc.get("import", []):
                self._check_import(block)
        return self.problems

    def _check_body(self, where: str, body: dict[str, Any], schema: dict[str, Any]) -> None:
        attrs, blocks = schema["attributes"], schema.get("blocks", {})
        items = body_items(body)
        for key, value in items.items():
            if key in META_ARGUMENTS:
                continue
            if is_block_list(value):
                spec = blocks.get(key)
                if spec is None:
                    self.problems.append(f"{where}: block {key} is not in the real schema")
                    continue
                if spec.get("max_items") is not None and len(value) > spec["max_items"]:
                    allowed = spec["max_items"]
                    self.problems.append(f"{where}: {len(value)} {key} blocks, the real schema allows {allowed}")
                for i, inner in enumerate(value):
                    self._check_body(f"{where}.{key}[{i}]", inner, spec)
                continue
            spec = attrs.get(key)
            if spec is None:
                self.problems.append(f"{where}: attribute {key} is not in the real schema")
                continue
            if not (spec["optional"] or spec["required"]):
                self.problems.append(f"{where}: attribute {key} is computed-only in the real schema")
            got = self._type_of(value)
            if got is not None and not compatible(got, spec["type"]):
                self.problems.append(f"{where}: {key} is {got}, the real schema says {spec['type']}")
            self._check_sensitive(where, key, value, spec)
        for key, spec in attrs.items():
            if spec["required"] and key not in items:
                self.problems.append(f"{where}: required attribute {key} is missing")
        for key, spec in blocks.items():
            if (spec.get("min_items") or 0) > 0 and key not in items:
                self.problems.append(f"{where}: required block {key} is missing")

    def _check_sensitive(self, where: str, key: str, value: Any, spec: dict[str, Any]) -> None:
        if f"var.{SAS_VARIABLE}" not in json.dumps(value):
            return
        declared = self.variables.get(SAS_VARIABLE, {})
        # Where the real attribute is not sensitive (spark_conf), only the variable's own
        # `sensitive = true` keeps the token out of plan output: it must be there.
        if spec.get("sensitive") is not True and declared.get("sensitive") is not True:
            self.problems.append(
                f"{where}: {key} gets the SAS token but neither it nor var.{SAS_VARIABLE} is sensitive"
            )

    def _check_provider(self, name: str, body: dict[str, Any]) -> None:
        if f"registry.terraform.io/databricks/{name}" != REAL["provenance"]["provider"]:
            self.problems.append(f"provider {name} is not the snapshot's provider")
            return
        for key, value in body_items(body).items():
            spec = REAL["provider"]["attributes"].get(key)
            if spec is None:
                self.problems.append(f"provider: attribute {key} is not in the real schema")
            elif spec.get("sensitive"):
                self.problems.append(f"provider: sets sensitive {key} in a file — it must come from the environment")
            elif (got := self._type_of(value)) is not None and not compatible(got, spec["type"]):
                self.problems.append(f"provider: {key} is {got}, the real schema says {spec['type']}")

    def _check_import(self, block: dict[str, Any]) -> None:
        target = str(block.get("to", "")).removeprefix("${").removesuffix("}")
        rtype, _, rname = target.partition(".")
        if (rtype, rname) not in {(t, n) for t, n, _ in self.resources}:
            self.problems.append(f"import to {target}: no such resource in the generated root")
        if self._type_of(block.get("id")) != "string":
            self.problems.append(f"import to {target}: id is not a string")

    def _type_of(self, value: Any) -> Any:
        """The HCL type of a parsed value; None when it cannot be known statically."""
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, dict):
            inner = {self._type_of(v) for v in body_items(value).values()}
            return ["map", inner.pop()] if len(inner) == 1 else ["map", "string"] if not inner else "mixed map"
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            return self._type_of_reference(value[2:-1])
        if isinstance(value, str):
            return "string"
        return None

    def _type_of_reference(self, ref: str) -> Any:
        parts = ref.split(".")
        if parts[0] == "var" and len(parts) == 2:
            declared = self.variables.get(parts[1])
            if declared is None:
                self.problems.append(f"reference to undeclared variable {ref}")
                return None
            return declared.get("type", "string").removeprefix("${").removesuffix("}")
        if len(parts) == 3 and parts[0] in REAL["resources"]:
            spec = REAL["resources"][parts[0]]["attributes"].get(parts[2])
            if spec is None:
                self.problems.append(f"reference {ref}: {parts[2]} is not an attribute of {parts[0]}")
                return None
            return spec["type"]
        return None


def compatible(got: Any, expected: Any) -> bool:
    if got == expected:
        return True
    # Terraform converts number/bool to string attributes on assignment.
    return expected == "string" and got in ("number", "bool")


# ---- the tests ------------------------------------------------------------------------------


def test_maximal_config_sets_every_optional_cluster_field() -> None:
    """New fields in provision.schema.json must be added here, or the contract misses them."""
    fields = set(CONFIG_SCHEMA["$defs"]["cluster"]["properties"])
    used = set().union(*(c.keys() for c in MAXIMAL_CLUSTERS))
    assert fields == used, f"not exercised: {sorted(fields - used)}"


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_every_emitted_resource_and_attribute_exists_in_the_real_provider(tmp_path: Path, mode: str) -> None:
    files = render(tmp_path, mode)
    checker = Checker(files)
    assert not checker.check(), checker.problems
    # The maximal config really produced what we meant to check.
    types = {t for t, _, _ in checker.resources}
    # secret_scope: the tool writes the secret's value; Terraform holds only the scope.
    # sas.readers: READ grants on the scope (databricks_secret_acl).
    secret_types = {"databricks_secret_scope", "databricks_secret_acl"} if mode == "secret_scope" else set()
    expected = {"databricks_cluster"} | secret_types
    assert types == expected
    everything = next(body for t, n, body in checker.resources if n == "everything")
    assert {"autoscale", "spark_env_vars", "single_user_name", "is_pinned", "policy_id"} <= set(everything)
    assert "imports.tf" in files


def test_sas_token_only_reaches_sensitive_places(tmp_path: Path) -> None:
    # secret_scope: Terraform never gets the token — no variable, no databricks_secret.
    scoped = render(tmp_path, "secret_scope")
    assert "variables.tf" not in scoped
    assert SAS_VARIABLE not in "".join(scoped.values()).replace(f"databricks_secret.{SAS_VARIABLE}", "")
    checker = Checker(render(tmp_path, "inline"))
    assert checker.variables[SAS_VARIABLE].get("sensitive") is True


def test_provider_requirement_admits_the_snapshot_version(tmp_path: Path) -> None:
    files = render(tmp_path, "inline")
    (terraform,) = hcl2.loads(files["versions.tf"])["terraform"]
    (required,) = terraform["required_providers"]
    assert unquote(required["databricks"]["source"]) == "databricks/databricks"
    assert REAL["provenance"]["provider"] == "registry.terraform.io/databricks/databricks"
    major_minor = PROVIDER_CONSTRAINT.removeprefix("~> ")
    assert REAL["provenance"]["provider_version"].startswith(major_minor + ".")


BROKEN = {  # case: (emitted text, broken text, what the checker must say)
    "unknown attribute": ("  cluster_name ", '  bogus_attribute = "x"\n  cluster_name ', "bogus_attribute is not in"),
    "computed-only attribute": ("  cluster_name ", '  cluster_id = "x"\n  cluster_name ', "computed-only"),
    "wrong type": ("autotermination_minutes = 60", 'autotermination_minutes = { a = "b" }', "says number"),
    "unknown block": ("  autoscale {", "  bogus_block {\n  }\n\n  autoscale {", "block bogus_block"),
    "missing required": ("  name ", "  # name ", "required attribute name is missing"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_fails_on_a_broken_template_output(tmp_path: Path, case: str) -> None:
    """The contract is only worth its silence if it would speak: break the output, see it fail."""
    old, new, said = BROKEN[case]
    files = render(tmp_path, "secret_scope")
    target = "dlz.tf" if case == "missing required" else "clusters.tf"
    assert old in files[target]
    files[target] = files[target].replace(old, new, 1)
    problems = Checker(files).check()
    assert any(said in p for p in problems), f"{case} went unnoticed: {problems}"
