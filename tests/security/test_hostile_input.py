"""Guarantee: hostile input never becomes wrong HCL, and unsafe names never touch the disk.

The property test draws cluster_name, custom_tags values and spark_conf keys/values full of
quotes, backslashes, newlines, unicode (decomposed too), `${…}`, `%{…}`, `{{…}}` and long
strings. Each drawn cluster is validated on its own: it is either rejected with a one-line
ConfigError naming file and key, or kept. All kept clusters of one example go into ONE
project (a terraform run per check, not per value), which the real CLI plans on the sandbox;
then `terraform fmt -check` and `terraform validate` must accept the root and
`terraform show -json` of the saved plan must hold every value exactly as written.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from provisioner.config.model import load_config
from provisioner.databricks.cluster_tags import MANAGED_TAGS, managed_tags
from provisioner.errors import ConfigError
from tests.helpers.config import BASE_CONFIG
from tests.helpers.output import error_lines
from tests.helpers.project import Project, new_project

ENV_NAME = "default"  # a provision.yaml without environments has one, named so

TERRAFORM = os.environ.get("TERRAFORM_BINARY", "terraform")
DLZ_KEY_PREFIX = "fs.azure.sas."

FRAGMENTS = [
    '"',
    "\\",
    "\\n",
    "\n",
    "\r\n",
    "\t",
    "${",
    "}",
    "${var.dlz_sas_token}",
    "$${x}",
    "%{",
    "%%{",
    "%{ if true }x%{ endif }",
    "{{",
    "}}",
    "{{secrets/aep-dlz/dlz-sas-token}}",
    "{{ header }}",
    "{% raw %}",
    "'",
    "`",
    "#",
    "//",
    "/*",
    "*/",
    "<<EOF\n",
    "=",
    "é",
    "e\u0301",
    "\u212b",
    "日本語",
    "😀",
    "\u2028",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\ufeff",
    "\u200b",
    "null",
    "true",
    "-1",
]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), min_size=1, max_size=8).map("".join)
long_text = st.text(min_size=90, max_size=400)
value = st.one_of(hostile, hostile, long_text)
conf_key = st.one_of(st.from_regex(r"\A[a-z][a-z0-9_.:@+-]{0,40}\Z"), hostile)


@st.composite
def cluster(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "cluster_name": draw(value),
        "custom_tags": draw(st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,20}\Z"), value, max_size=3)),
        "spark_conf": draw(st.dictionaries(conf_key, value, max_size=3)),
    }


def yaml_round_trips(obj: Any) -> bool:
    try:
        return bool(yaml.safe_load(yaml.safe_dump(obj, allow_unicode=True)) == obj)
    except yaml.YAMLError:
        return False


def full_cluster(i: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"c{i}",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "num_workers": 1,
        **fields,
    }


def classify(workdir: Path, drawn: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Validate each drawn cluster alone: (accepted clusters, rejection messages)."""
    accepted, rejected = [], []
    for i, fields in enumerate(drawn):
        config = copy.deepcopy(BASE_CONFIG)
        config["clusters"] = [full_cluster(i, fields)]
        path = workdir / f"check{i}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        try:
            load_config(path, environ={})
        except ConfigError as exc:
            rejected.append(str(exc))
            continue
        accepted.append(config["clusters"][0])
    return accepted, rejected


def sandbox_terraform_env(project: Project) -> dict[str, str]:
    from provisioner.sandbox import Sandbox

    with Sandbox(project.sandbox_dir, workspace_hosts=[BASE_CONFIG["databricks"]["host"]]) as sb:
        env = sb.terraform_env()
    base = {k: v for k, v in project.env().items() if not k.startswith("PROVISION_SANDBOX_HOSTS")}
    return {**base, **env, "TF_IN_AUTOMATION": "1"}


def terraform(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TERRAFORM, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def assert_rejection_is_clear(message: str) -> None:
    for line in message.strip().split("\n"):  # one line per problem (config/problems.py)
        assert re.search(r"check\S*\.yaml(:\d+)?: ", line), line  # names the file (and its line)…
        assert "clusters[0]" in line or "(top level)" in line, line  # …and the key path
        assert " — " in line or "expected" in line or "not valid" in line or "out of range" in line, line


def check_batch(drawn: list[dict[str, Any]]) -> None:
    assume(yaml_round_trips(drawn))
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        workdir = Path(tmp)
        accepted, rejected = classify(workdir, drawn)
        for message in rejected:
            assert_rejection_is_clear(message)
        # Anything HCL would normalise must be among the rejected ones.
        for c in accepted:
            for text in [c["cluster_name"], *c["custom_tags"].values(), *c["spark_conf"], *c["spark_conf"].values()]:
                assert unicodedata.is_normalized("NFC", text)
        if not accepted:
            return
        project = new_project(workdir / "project", {**BASE_CONFIG, "clusters": accepted})
        plan_file = project.dir / "hostile.tfplan"
        done = project.run("plan", "--out", str(plan_file))
        assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
        root = project.root()
        env = sandbox_terraform_env(project)
        fmt = terraform(root, env, "fmt", "-check", "-diff")
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
        validate = terraform(root, env, "validate", "-json")
        assert json.loads(validate.stdout)["valid"], validate.stdout
        show = terraform(root, env, "show", "-json", str(plan_file))
        assert show.returncode == 0, show.stderr
        planned = {
            r["name"]: r["values"]
            for r in json.loads(show.stdout)["planned_values"]["root_module"]["resources"]
            if r["type"] == "databricks_cluster"
        }
        for c in accepted:
            seen = planned[c["name"]]
            assert seen["cluster_name"] == c["cluster_name"]
            tags = dict(seen.get("custom_tags") or {})
            # The tool's own tags (issue 21) beside the user's, which reach Terraform exactly.
            assert {k: tags.pop(k) for k in MANAGED_TAGS} == managed_tags(ENV_NAME, c["name"])
            assert tags == c["custom_tags"]
            user_conf = {k: v for k, v in (seen.get("spark_conf") or {}).items() if not k.startswith(DLZ_KEY_PREFIX)}
            assert user_conf == c["spark_conf"]


NAMED_NASTIES = [
    {
        "cluster_name": 'quote " backslash \\ newline \n tab \t',
        "custom_tags": {"t": "${var.dlz_sas_token}"},
        "spark_conf": {"spark.a": "%{ if true }x%{ endif }", "spark.b": "{{secrets/aep-dlz/dlz-sas-token}}"},
    },
    {
        "cluster_name": "$${already} %%{doubled} {{ header }} {% raw %}",
        "custom_tags": {"u": "日本語 😀 é \u2028"},
        "spark_conf": {"spark.c": "\\${x}", "spark.d": "a\r\nb\x00c\x1b[31m"},
    },
    {"cluster_name": "x" * 100, "custom_tags": {"long": "y" * 256}, "spark_conf": {"spark.long": 'z\\"' * 1000}},
    # Rejected: non-NFC (HCL would normalise it), too long, a key that is not a Spark key.
    {"cluster_name": "caf" + "e\u0301", "custom_tags": {}, "spark_conf": {}},
    {"cluster_name": "x" * 101, "custom_tags": {}, "spark_conf": {}},
    {"cluster_name": "ok", "custom_tags": {}, "spark_conf": {"bad key ${x}": "v"}},
    # Found by CI: the rejection named this key raw, so the one-line error had two lines.
    {"cluster_name": "ok", "custom_tags": {}, "spark_conf": {'<<EOF\n"': "e\u0301"}},
]


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@example(NAMED_NASTIES)
@given(st.lists(cluster(), min_size=4, max_size=12))
def test_hostile_values_are_rejected_or_reach_terraform_exactly(drawn: list[dict[str, Any]]) -> None:
    check_batch(drawn)


def test_non_nfc_text_is_rejected_by_config(tmp_path: Path) -> None:
    """HCL turns 'e'+U+0301 into 'é': such a value could never reach Terraform as written."""
    config = copy.deepcopy(BASE_CONFIG)
    config["clusters"][0]["custom_tags"]["team"] = "cafe\u0301"
    path = tmp_path / "provision.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clusters\[0\]\.custom_tags\.team: text is not in Unicode NFC"):
        load_config(path, environ={})


# ---- unsafe names and files: rejected before anything touches the disk ---------------------

BAD_ENV_NAMES = ["../evil", "a/b", "/etc", "..", "terraform", "data", "Prod", "a" * 40]
BAD_CLUSTER_NAMES = ["../evil", "a/b", "/abs/path", "count", "for_each", "depends_on", "x y", "Évil"]


def disk_listing(project: Project) -> set[str]:
    """Everything the run could have written, minus the test harness's own provider certificate
    cache in HOME (tests/conftest.py copies it in when a run starts)."""
    cache = project.dir / "home" / ".cache"
    return {str(p.relative_to(project.dir)) for p in project.dir.rglob("*") if p != cache and cache not in p.parents}


def assert_refused_before_disk(project: Project, *phrases: str) -> None:
    before = disk_listing(project)
    started = time.monotonic()
    done = project.run("plan")
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = error_lines(done)
    assert str(project.config_path) in line, line
    for phrase in phrases:
        assert phrase in line, line
    assert "Traceback" not in done.stderr
    assert disk_listing(project) == before, "something was written for a rejected config"
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("name", BAD_ENV_NAMES)
def test_unsafe_environment_names_are_refused(project: Project, name: str) -> None:
    project.config["environments"] = {name: {"aep": {"sandbox": "dev"}}}
    project.write_config()
    assert_refused_before_disk(project, f"environments.{name}", "not a safe environment name")


@pytest.mark.parametrize("name", BAD_CLUSTER_NAMES)
def test_unsafe_cluster_names_are_refused(project: Project, name: str) -> None:
    project.config["clusters"][0]["name"] = name
    project.write_config()
    assert_refused_before_disk(project, "clusters[0].name")


def test_yaml_alias_bomb_is_refused_quickly(project: Project) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    project.config_path.write_text("\n".join(lines) + "\n")
    assert_refused_before_disk(project, "alias bomb")


def test_huge_file_is_refused(project: Project) -> None:
    text = project.config_path.read_text()
    project.config_path.write_text(text + "# " + "x" * (2 << 20) + "\n")
    assert_refused_before_disk(project, "bytes", "must be under")


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_wrong_encoding_is_refused(project: Project, encoding: str) -> None:
    config = copy.deepcopy(project.config)
    config["clusters"][0]["custom_tags"]["team"] = "données"
    project.config_path.write_bytes(yaml.safe_dump(config, allow_unicode=True).encode(encoding))
    assert_refused_before_disk(project, "not UTF-8", "save the file as UTF-8")


def test_cli_process_is_the_real_one() -> None:
    """The subprocess runs this checkout's CLI (not an installed copy elsewhere)."""
    out = subprocess.run(
        [sys.executable, "-c", "import provisioner, sys; print(provisioner.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().startswith(str(Path(__file__).resolve().parents[2]))
