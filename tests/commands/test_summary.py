"""`provision plan --summary`: from `terraform show -json`; restarts, masked SAS, size limit, no secrets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.aep.landingzone import DlzCredentials
from provisioner.config.model import Environment, load_config
from provisioner.review.plan_summary import GITHUB_COMMENT_LIMIT, PlanSummary, ResourceSummary, summarize, to_markdown
from provisioner.secret import Secret
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, ORG
from tests.helpers.project import Project, applied

SAS_KEY = "fs.azure.sas.dlz-databricks-container.acct.blob.core.windows.net"
TOKEN = "sv=2020-10-02&si=dlz-1&sr=c&sp=racwdlm&sig=SECRETsig%2Fvalue%2B0000%3D"
OLD_TOKEN = "sv=2020-10-02&si=dlz-0&sr=c&sp=racwdlm&sig=OLDsig%2Fvalue%2B1111%3D"


def _token(project: Project) -> str:
    return str(project.store().dlz_credentials(ORG, "prod")["SASToken"])


def _plan_summary(project: Project, name: str) -> str:
    done = project.run("plan", "--summary", str(project.dir / name))
    assert done.returncode == 2, done.stderr
    return (project.dir / name).read_text()


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_rotation_plan_summary(project: Project, mode: str) -> None:
    project.config["sas"] = {**project.config["sas"], "mode": mode}
    project.write_config()
    applied(project)
    old = _token(project)
    project.store().refresh_dlz(ORG, "prod")
    new = _token(project)

    markdown = _plan_summary(project, "plan.md")
    doc = json.loads(_plan_summary(project, "plan.json"))

    first = markdown.splitlines()[0]
    assert first.startswith("**Plan for `default`:") and "2 running cluster(s) restart" in first
    assert "`sig=***`" in first and "expires" in first
    assert markdown.index("<details>") > len(first)
    assert doc["sasToken"]["changes"] is True and doc["sasToken"]["masked"] == "sig=***"
    assert sorted(doc["restarts"]) == ["databricks_cluster.aep-explore", "databricks_cluster.aep-ingest"]
    if mode == "secret_scope":
        # Terraform changes nothing: the tool writes the secret in place, then restarts.
        assert doc["totals"] == {"import": 0, "add": 0, "change": 0, "destroy": 0}
        assert "destroys" not in first
    else:
        assert doc["totals"] == {"import": 0, "add": 0, "change": 2, "destroy": 0}
        assert all("spark_conf change on a RUNNING cluster" in r["restartReason"] for r in doc["resources"])
    for text in (markdown, json.dumps(doc)):
        for secret in (old, new, AEP_SECRET, DATABRICKS_PAT):
            assert secret not in text
        assert "sig=" not in text.replace("sig=***", "")


# ---- the pure parts, on hand-written `show -json` documents --------------------------------


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    import yaml

    path = tmp_path / "provision.yaml"
    path.write_text(yaml.safe_dump({**BASE_CONFIG, "sas": {"mode": "inline"}}))
    return load_config(path, environ={}).environments["default"]


@pytest.fixture
def creds() -> DlzCredentials:
    return DlzCredentials("dlz-databricks-container", "acct", Secret(TOKEN), dt.date(2030, 1, 1))


def _cluster_change(actions: list[str], before: dict[str, Any], after: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "address": "databricks_cluster.c",
        "mode": "managed",
        "type": "databricks_cluster",
        "name": "c",
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": {},
            "before_sensitive": {"spark_conf": True},
            "after_sensitive": {"spark_conf": True},
            **extra,
        },
    }


def _base(state: str = "RUNNING", **kw: Any) -> dict[str, Any]:
    return {
        "cluster_name": "c",
        "num_workers": 1,
        "state": state,
        "spark_conf": {SAS_KEY: OLD_TOKEN},
        "spark_env_vars": {"PASSWORD": "hunter2-env-secret"},
        **kw,
    }


def test_restart_detection(env: Environment, creds: DlzCredentials) -> None:
    resize = _cluster_change(["update"], _base(), _base(num_workers=3))
    conf = _cluster_change(["update"], _base(), _base(spark_conf={SAS_KEY: TOKEN}))
    stopped = _cluster_change(["update"], _base("TERMINATED"), _base("TERMINATED", spark_conf={SAS_KEY: TOKEN}))
    summary = summarize({"variables": {"dlz_sas_token": {"value": TOKEN}}, "resource_changes": [resize]}, env, creds)
    assert summary.resources[0].restart is False
    assert summary.resources[0].changed == ["num_workers: 1 → 3"]
    summary = summarize({"resource_changes": [conf]}, env, creds)
    assert summary.resources[0].restart is True and summary.resources[0].sas_entry_changes
    assert summary.resources[0].changed == [f"spark_conf[{SAS_KEY}]"]
    summary = summarize({"resource_changes": [stopped]}, env, creds)
    assert summary.resources[0].restart is False and summary.sas_changes


def test_import_plus_update_and_nothing_secret(env: Environment, creds: DlzCredentials) -> None:
    change = _cluster_change(
        ["update"],
        _base(),
        _base(spark_conf={SAS_KEY: TOKEN}, spark_env_vars={"PASSWORD": "hunter3-new"}),
        importing={"id": "0101-000000-abcdefgh"},
    )
    secret = {
        "address": "databricks_secret.s",
        "mode": "managed",
        "type": "databricks_secret",
        "name": "s",
        "change": {
            "actions": ["delete", "create"],
            "before": {"string_value": OLD_TOKEN},
            "after": {"string_value": TOKEN},
            "after_unknown": {},
            "before_sensitive": {"string_value": True},
            "after_sensitive": {"string_value": True},
        },
    }
    plan = {"variables": {"dlz_sas_token": {"value": TOKEN}}, "resource_changes": [change, secret]}
    summary = summarize(plan, env, creds)
    assert summary.resources[0].action == "import+update"
    assert summary.resources[0].import_id == "0101-000000-abcdefgh"
    assert summary.totals == {"import": 1, "add": 1, "change": 1, "destroy": 1}
    text = to_markdown(summary) + json.dumps(summary.to_json())
    for secret_value in (TOKEN, OLD_TOKEN, "hunter2-env-secret", "hunter3-new", "SECRETsig", "OLDsig"):
        assert secret_value not in text
    assert "spark_env_vars[PASSWORD]" in text  # the key name only


def test_markdown_stays_under_the_comment_limit(env: Environment) -> None:
    resources = [
        ResourceSummary(
            f"databricks_cluster.c{i:05d}",
            "databricks_cluster",
            "update",
            changed=[f"spark_conf[key.{j}.{'x' * 40}]" for j in range(5)],
            restart=True,
            restart_reason="spark_conf change on a RUNNING cluster",
        )
        for i in range(3000)
    ]
    summary = PlanSummary("default", "inline", resources, True, "2030-01-01")
    text = to_markdown(summary)
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.splitlines()[0] == f"**{summary.totals_line()}**"
    assert "0 to import, 0 to add, 3000 to change, 0 to destroy" in text.splitlines()[0]
    assert "more not shown (comment size limit)" in text
    assert text.rstrip().endswith("</details>")
    small = to_markdown(PlanSummary("default", "inline", resources[:3], True, "2030-01-01"))
    assert "not shown" not in small and small.count("| `databricks_cluster.c") == 3


def test_wrong_suffix_is_a_clear_error(project: Project) -> None:
    done = project.run("plan", "--summary", str(project.dir / "plan.txt"))
    assert done.returncode == 1
    assert "name a .md or .json file" in done.stderr
