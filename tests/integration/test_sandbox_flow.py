"""The whole product on the offline sandbox with the real terraform binary:
plan → apply → plan shows no changes → every cluster reaches the DLZ → a refresh outside
the tool revokes that access."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT, ORG, WORKSPACE_KEY
from tests.helpers.project import Project, cluster_ids


def secret_forms(project: Project) -> list[str]:
    """Every secret of the run, plus the bare SAS signature."""
    from urllib.parse import unquote

    tokens = [t["SASToken"] for t in project.store().valid_tokens()] if project.store().valid_tokens() else []
    sigs = [re.search(r"sig=([^&]+)", t).group(1) for t in tokens]  # type: ignore[union-attr]
    return [AEP_SECRET, DATABRICKS_PAT, *tokens, *sigs, *(unquote(s) for s in sigs)]


def assert_no_secret_in(text: str, project: Project) -> None:
    for secret in secret_forms(project):
        assert secret not in text


@pytest.mark.parametrize("mode", ["secret_scope", "inline"])
def test_plan_apply_converge_and_outside_refresh(project: Project, mode: str) -> None:
    project.config["sas"]["mode"] = mode
    project.write_config()

    planned = project.run("plan")
    assert planned.returncode == 2, planned.stderr
    assert planned.stdout.count('resource "databricks_cluster"') == 2
    assert "fs.azure.sas.dlz-databricks-container." in planned.stdout
    if mode == "inline":
        assert "(sensitive value)" in planned.stdout
    else:
        assert '"{{secrets/aep-dlz/dlz-sas-token}}"' in planned.stdout
    assert_no_secret_in(planned.stdout + planned.stderr, project)

    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert_no_secret_in(applied.stdout + applied.stderr, project)

    root = project.root()
    ids = cluster_ids(project)
    assert set(ids) == {"aep-ingest", "aep-explore"}
    store = project.store()
    assert all(store.dlz_access(WORKSPACE_KEY, cid) for cid in ids.values())

    replanned = project.run("plan")
    assert replanned.returncode == 0, replanned.stdout + replanned.stderr
    assert "No changes." in replanned.stdout

    # State and saved plans hold the token; both private. Nothing else on disk holds it.
    assert stat.S_IMODE((root / "terraform.tfstate").stat().st_mode) == 0o600
    plan_file = root / ".terraform" / "dlz-provisioner.tfplan"
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    for path in project.dir.rglob("*"):
        if (
            path.is_file()
            and path.name not in ("terraform.tfstate", "terraform.tfstate.backup", plan_file.name)
            and ".provision" not in path.parts
        ):
            assert_no_secret_in(path.read_text(errors="replace"), project)

    # Someone refreshes the token outside the tool: AEP revokes the old one at once.
    store.refresh_dlz(ORG, "prod")
    assert not any(store.dlz_access(WORKSPACE_KEY, cid) for cid in ids.values())

    # The tool converges again: the next apply puts the new token live on every cluster.
    healed = project.run("apply", "--auto-approve")
    assert healed.returncode == 0, healed.stderr
    assert all(project.store().dlz_access(WORKSPACE_KEY, cid) for cid in ids.values())
    assert project.run("plan").returncode == 0


def test_apply_refuses_without_tty_or_auto_approve(project: Project) -> None:
    done = project.run("apply")
    assert done.returncode == 1
    assert "refusing to apply without a terminal to confirm on — pass --auto-approve" in done.stderr
    assert not project.root().exists()


def test_saved_plan_is_applied_as_is(project: Project, tmp_path: Path) -> None:
    plan_file = tmp_path / "saved.tfplan"
    planned = project.run("plan", "--out", str(plan_file))
    assert planned.returncode == 2, planned.stderr
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    applied = project.run("apply", str(plan_file), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert not plan_file.exists()  # it held the token and can never be applied again
    assert project.run("plan").returncode == 0


def test_credentials_command_never_shows_the_token(project: Project) -> None:
    done = project.run("credentials", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["containerName"] == "dlz-databricks-container" and doc["daysLeft"] == 90
    human = project.run("credentials")
    assert "sig=***" in human.stdout
    assert_no_secret_in(done.stdout + human.stdout + human.stderr, project)


def test_render_check_detects_hand_edits(project: Project) -> None:
    assert project.run("render").returncode == 0
    assert project.run("render", "--check").returncode == 0
    clusters = project.root() / "clusters.tf"
    clusters.write_text(clusters.read_text().replace("60", "61"))
    done = project.run("render", "--check")
    assert done.returncode == 1 and "clusters.tf" in done.stderr


def test_environments_may_use_their_own_aep_clients_and_orgs(project: Project) -> None:
    project.config["environments"] = {
        "a": {},
        "b": {"aep": {"org_id": "9999ABCD5678EF90ABCD1234@AdobeOrg", "client_id": "another-client-id"}},
    }
    project.write_config()
    for env in ("a", "b"):
        done = project.run("credentials", "--env", env, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["environment"] == env
