"""`provision envs` (a CI matrix, --changed-since) and `provision summary merge` (one review comment).

`envs --changed-since` runs against real git in a throwaway repository; the merge reads JSON
summaries that real plans wrote, plus synthetic ones for scale (the size limit must hold for
any number of environments).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.review.plan_summary import GITHUB_COMMENT_LIMIT
from provisioner.review.review_comment import MARKER, read_summaries, to_markdown
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, REPO, WORKSPACE_HOST
from tests.helpers.project import Project

ENVS = {
    "alpha": {"aep": {"sandbox": "alpha"}},
    "beta": {"aep": {"sandbox": "beta"}, "databricks": {"host": "https://adb-2222222222222222.2.azuredatabricks.net"}},
    "gamma": {"aep": {"sandbox": "gamma"}, "terraform": {"backend": {"type": "pg"}}},
}


@pytest.fixture
def multi(project: Project) -> Project:
    project.config = {**copy.deepcopy(BASE_CONFIG), "environments": copy.deepcopy(ENVS)}
    project.write_config()
    return project


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def envs(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return project.run("envs", *args, sandbox=False)


# ---- provision envs -------------------------------------------------------------------------


def test_envs_json_is_a_github_and_an_azure_devops_matrix(multi: Project) -> None:
    done = envs(multi, "--json")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1  # one line: a CI output variable
    doc = json.loads(done.stdout)
    assert doc == {
        "include": [
            {
                "env": "alpha",
                "aepSandbox": "alpha",
                "workspaceHost": WORKSPACE_HOST,
                "backend": "local",
            },
            {
                "env": "beta",
                "aepSandbox": "beta",
                "workspaceHost": "https://adb-2222222222222222.2.azuredatabricks.net",
                "backend": "local",
            },
            {
                "env": "gamma",
                "aepSandbox": "gamma",
                "workspaceHost": WORKSPACE_HOST,
                "backend": "pg",
            },
        ]
    }
    azure = json.loads(envs(multi, "--json", "--matrix", "azure-devops").stdout)
    assert azure == {e["env"]: e for e in doc["include"]}
    table = envs(multi).stdout.splitlines()
    assert table[0].split() == ["ENV", "AEP", "SANDBOX", "WORKSPACE", "BACKEND"] and len(table) == 4


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_changed_since_names_only_the_environments_a_change_reaches(multi: Project) -> None:
    git(multi.dir, "init", "-q")
    git(multi.dir, "config", "user.email", "t@example.com")
    git(multi.dir, "config", "user.name", "t")
    git(multi.dir, "add", "provision.yaml")
    git(multi.dir, "commit", "-qm", "base")

    def changed() -> list[str]:
        done = envs(multi, "--json", "--changed-since", "HEAD")
        assert done.returncode == 0, done.stderr
        return [e["env"] for e in json.loads(done.stdout)["include"]]

    assert changed() == []
    # Formatting and comments change no environment.
    text = multi.config_path.read_text()
    multi.config_path.write_text("# reviewed by the data team\n" + text.replace("aep:", "aep:   ", 1))
    assert changed() == []
    # An overlay reaches its environment only.
    multi.config["environments"]["beta"]["sas"] = {"warn_days": 3}
    multi.write_config()
    assert changed() == ["beta"]
    # The top level reaches every environment that does not override it.
    multi.config["clusters"][1]["num_workers"] = 2
    multi.write_config()
    assert changed() == ["alpha", "beta", "gamma"]
    git(multi.dir, "commit", "-qam", "two workers")
    assert changed() == []
    # A committed root edited by hand (or rendered by another version) is a change too.
    root = multi.root("gamma")
    root.mkdir(parents=True)
    (root / "extra.tf").write_text("# hand-written\n")
    git(multi.dir, "add", "-A")
    git(multi.dir, "commit", "-qm", "root")
    (root / "extra.tf").write_text("# edited\n")
    assert changed() == ["gamma"]
    # A new environment is changed; the text form says so too.
    multi.config["environments"]["delta"] = {"aep": {"sandbox": "delta"}}
    multi.write_config()
    assert "delta" in changed()

    bad = envs(multi, "--changed-since", "no-such-ref")
    assert bad.returncode == 1
    (line,) = bad.stderr.strip().splitlines()
    assert "--changed-since no-such-ref: no such commit" in line and "fetch-depth: 0" in line


def test_changed_since_in_this_repository_uses_its_own_templates(tmp_path: Path) -> None:
    """The tool's own checkout: templates/ and examples/ are in one repository; HEAD changes nothing."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    if git(REPO, "status", "--porcelain", "--", "templates", "examples", "terraform").strip():
        pytest.skip("uncommitted template/example changes in this checkout")
    proj = Project(tmp_path, {})  # its environment only: HOME (and caches) in tmp_path, not in the checkout
    done = subprocess.run(
        [*_cli(), "envs", "--json", "--changed-since", "HEAD", "--config", str(REPO / "examples" / "provision.yaml")],
        cwd=REPO,
        env=proj.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"include": []}


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "provisioner.main"]


# ---- provision summary merge -----------------------------------------------------------------


def test_merge_of_real_plans_failed_first_then_changes_then_unchanged(multi: Project) -> None:
    # beta's plan fails after the config loads: a user-written DLZ key would now stop the whole file
    # at load (issue 27, 5903549), so beta's backend is a pg one without PG_CONN_STR, like gamma's.
    multi.config["environments"]["beta"]["terraform"] = {"backend": {"type": "pg"}}
    multi.write_config()
    assert multi.run("apply", "--env", "alpha", "--auto-approve").returncode == 0
    codes = {}
    for env in ("alpha", "beta"):
        codes[env] = multi.run("plan", "--env", env, "--summary", f"plan-{env}.json").returncode
    assert codes == {"alpha": 0, "beta": 1}
    assert multi.run("plan", "--env", "gamma", "--summary", "plan-gamma.md").returncode == 1  # no PG_CONN_STR
    plans = sorted(str(p) for p in multi.dir.glob("plan-*.json"))
    envs_json = multi.dir / "envs.json"
    envs_json.write_text(envs(multi, "--json").stdout)

    done = multi.run(
        "summary", "merge", *plans, "--out", "comment.md", "--out", "merged.json", "--expect", str(envs_json)
    )
    assert done.returncode == 0, done.stderr
    comment = (multi.dir / "comment.md").read_text()
    merged = json.loads((multi.dir / "merged.json").read_text())
    assert comment.startswith(
        MARKER + "\n### dlz-provisioner plan: 3 environments, 0 with changes, 1 unchanged, 2 failed"
    )
    rows = [line for line in comment.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["beta", "gamma", "alpha"]  # failed (by name), then unchanged
    assert "**failed**" in rows[0] and "PG_CONN_STR" in rows[0]
    assert "no plan summary" in rows[1]  # gamma wrote Markdown only: the merge names it missing
    assert [r["environment"] for r in merged["results"]] == ["beta", "gamma", "alpha"]
    assert merged["failed"] == 2 and merged["unchanged"] == 1
    for text in (comment, json.dumps(merged)):
        for secret in (AEP_SECRET, DATABRICKS_PAT, "sig=" + "x"):
            assert secret not in text


def _summary(env: str, n: int, status: str = "changes") -> dict[str, Any]:
    if status == "failed":
        return {"schemaVersion": 1, "environment": env, "status": "failed", "error": "terraform plan failed " * 30}
    resources = [
        {
            "address": f"databricks_cluster.c{i:03d}",
            "type": "databricks_cluster",
            "action": "update",
            "importId": None,
            "changedAttributes": ["spark_conf[spark.x]", "num_workers: 1 → 2"],
            "restartsRunningCluster": True,
            "restartReason": "spark_conf change on a RUNNING cluster (clusters/edit restarts it)",
            "sasEntryChanges": False,
        }
        for i in range(n)
    ]
    return {
        "schemaVersion": 1,
        "environment": env,
        "status": status,
        "totals": {"import": 0, "add": 0, "change": n, "destroy": 0},
        "restarts": [r["address"] for r in resources],
        "sasToken": {"changes": False, "masked": "sig=***", "expiryDate": "2027-01-01"},
        "resources": resources,
        "unchanged": 2,
    }


@pytest.mark.parametrize("count", [3, 60, 400])
def test_merged_comment_stays_under_the_limit_and_never_cuts_totals(tmp_path: Path, count: int) -> None:
    paths = []
    for i in range(count):
        status = "failed" if i % 10 == 3 else "no-changes" if i % 3 == 0 else "changes"
        doc = _summary(f"env-{i:03d}", 0 if status == "no-changes" else 40, status)
        path = tmp_path / f"plan-{i:03d}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    plans = read_summaries(paths)
    text = to_markdown(plans)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    head = text.split("<details>")[0]
    # Every failed and changed environment has its totals row before any fold.
    for plan in plans:
        if plan.status != "no-changes":
            assert f"| `{plan.environment}` |" in head
        else:
            assert plan.environment in head
    if count >= 60:
        assert "not shown (comment size limit)" in text


def test_an_environment_summarised_twice_is_refused(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(_summary("dev", 1)))
    with pytest.raises(Exception, match="also summarised in"):
        read_summaries([tmp_path / "a.json", tmp_path / "b.json"])
