"""`apply --reviewed plan.json`: a fresh plan is applied only if its change set is the reviewed one.

Real terraform on the sandbox. A token AEP rotates between review and apply counts only
through the resources it changes (provisioner/review/plan_review.py says how).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT, ORG, WORKSPACE_KEY
from tests.helpers.project import Project, applied, token


def review(project: Project, name: str = "plan-default.json") -> dict[str, Any]:
    done = project.run("plan", "--summary", name)
    assert done.returncode in (0, 2), done.stderr
    return dict(json.loads((project.dir / name).read_text()))


def secret_value(project: Project) -> str | None:
    value = project.store().secret_value(WORKSPACE_KEY, "aep-dlz", "dlz-sas-token")
    return None if value is None else str(value)


def test_reviewed_change_set_is_applied_with_the_current_token(project: Project) -> None:
    doc = review(project)
    assert doc["status"] == "changes" and doc["changeDigest"].startswith("sha256:")
    # secret_scope mode: the secret's value is the tool's, not Terraform's — not in the change set.
    assert {e["address"] for e in doc["changeSet"]} == {
        "databricks_cluster.aep-explore",
        "databricks_cluster.aep-ingest",
        "databricks_secret_scope.dlz",
    }

    # AEP rotates the token after the review: the reviewed change set is still exactly what
    # happens, and the tool writes the secret with the token that is valid now.
    reviewed_token = token(project)
    project.store().refresh_dlz(ORG, "prod")
    current = token(project)
    assert current != reviewed_token

    done = project.run("apply", "--reviewed", "plan-default.json", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "matches the reviewed change set" in done.stderr
    assert secret_value(project) == current
    assert not [p for p in project.root().rglob("apply-*.tfplan")]  # the fresh plan held the token: gone
    assert project.run("plan").returncode == 0


def test_a_rotation_after_the_review_only_rewrites_the_secret(project: Project) -> None:
    """The value is never part of a review (it is the tool's): an outside refresh after a
    no-change review is not a Terraform change; apply writes AEP's current token in place and
    restarts what runs on the revoked one — the only state in which clusters can work."""
    applied(project)
    doc = review(project)
    assert doc["status"] == "no-changes" and doc["changeSet"] == []
    project.store().refresh_dlz(ORG, "prod")  # outside the tool, after the review

    done = project.run("apply", "--reviewed", "plan-default.json", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "matches the reviewed change set" in done.stderr
    assert "Apply complete" not in done.stdout  # Terraform changed nothing
    assert secret_value(project) == token(project)
    assert not [p for p in project.root().rglob("apply-*.tfplan")]
    for secret in (token(project), AEP_SECRET, DATABRICKS_PAT):
        assert secret not in done.stdout + done.stderr


def test_a_config_change_after_the_review_stops_the_apply(project: Project) -> None:
    review(project)
    project.config["clusters"][1]["num_workers"] = 3
    project.write_config()
    done = project.run("apply", "--reviewed", "plan-default.json", "--auto-approve")
    assert done.returncode == 1
    assert "databricks_cluster.aep-explore: num_workers differ" in done.stderr
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_inline_mode_change_set_holds_no_token(project: Project) -> None:
    project.config["sas"] = {**project.config["sas"], "mode": "inline"}
    project.write_config()
    doc = review(project)
    text = (project.dir / "plan-default.json").read_text()
    assert token(project) not in text and "sig=" not in text.replace("sig=***", "")
    values = next(e for e in doc["changeSet"] if e["address"] == "databricks_cluster.aep-ingest")["values"]
    assert values["spark_conf"].startswith("sha256:")  # a fingerprint of the redacted map, never its values
    assert values["node_type_id"] == "Standard_DS3_v2"  # whitelisted plain settings are shown
    assert project.run("apply", "--reviewed", "plan-default.json", "--auto-approve").returncode == 0


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda d: d["changeSet"].pop(), "changeDigest does not match its changeSet (edited?)"),
        (lambda d: d.update(status="failed", error="x"), "records a failed plan"),
        (lambda d: d.pop("changeDigest"), "has no changeSet/changeDigest"),
        (lambda d: d.update(environment="prod"), "no such environment"),
    ],
)
def test_a_summary_that_is_not_a_review_is_refused_before_anything_runs(
    project: Project, edit: Any, complaint: str
) -> None:
    doc = review(project)
    edit(doc)
    (project.dir / "plan-default.json").write_text(json.dumps(doc))
    done = project.run("apply", "--reviewed", "plan-default.json", "--auto-approve")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert complaint in line, line
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_reviewed_and_a_plan_file_exclude_each_other(project: Project) -> None:
    review(project)
    done = project.run("apply", "x.tfplan", "--reviewed", "plan-default.json", "--auto-approve")
    assert done.returncode == 1 and "not both" in done.stderr
