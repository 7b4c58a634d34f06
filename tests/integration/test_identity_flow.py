"""Real Databricks identities end to end, with the real terraform on the sandbox:
the whole flow with OAuth M2M only (no PAT anywhere), ARM_* for the backend beside Databricks
credentials, the real provider's conflict error when the auth type is not pinned, and a
principal without the rights a rotation needs refused before anything changes."""

from __future__ import annotations

import json
import subprocess

from provisioner.sandbox import Sandbox
from tests.helpers.config import BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_KEY
from tests.helpers.identity import ARM, SP_ID, no_oauth_secrets, oauth_env
from tests.helpers.project import Project, cluster_ids


def test_the_whole_flow_with_oauth_m2m_only(project: Project) -> None:
    env = oauth_env(project)

    planned = project.run("plan", env=env)
    assert planned.returncode == 2, planned.stderr
    assert f"default: Databricks as sp-{SP_ID[:8]} (oauth-m2m)" in planned.stderr
    applied = project.run("apply", "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr
    assert project.run("plan", env=env).returncode == 0

    store = project.store()
    ids = cluster_ids(project)
    for cid in ids.values():
        assert store.get_cluster(WORKSPACE_KEY, cid)["creator_user_name"] == SP_ID  # created as the principal
        assert store.dlz_access(WORKSPACE_KEY, cid)

    status = project.run("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["databricksIdentity"] == {
        "principal": f"sp-{SP_ID[:8]}",
        "userName": SP_ID,
        "authType": "oauth-m2m",
        "admin": True,
    }

    rotated = project.run("rotate", "--auto-approve", "--timeout", "60", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert all(store.dlz_access(WORKSPACE_KEY, cid) for cid in ids.values())

    # Made by the principal before: only a cluster's owner may add the secret reference adopt leads to.
    existing = store.add_cluster(WORKSPACE_KEY, {"cluster_name": "Team Analytics"}, creator=SP_ID)
    adopted = project.run("adopt", "--cluster-id", existing, env=env)
    assert adopted.returncode == 0, adopted.stderr

    # AEP's connection authenticates with a PAT of its own, minted for the run's principal.
    connected = project.run("connect", "--cluster", "aep-ingest", "--timeout", "60", env=env)
    assert connected.returncode == 0, connected.stderr
    assert "its Databricks token" in connected.stderr
    (connection,) = store.connections()
    minted = connection["auth"]["params"]["accessToken"]
    owner = store.principal_for_token(minted)
    assert owner is not None and owner["userName"] == SP_ID
    no_oauth_secrets(*(r.stdout + r.stderr for r in (planned, applied, status, rotated, adopted, connected)))
    assert minted not in connected.stdout + connected.stderr


def test_arm_for_the_backend_beside_databricks_credentials(project: Project) -> None:
    """CI exports ARM_* for the azurerm backend and Databricks credentials: the tool pins the
    Databricks method for itself and Terraform; raw terraform without the pin fails exactly as
    the real provider does, with it it works."""
    for name, env in (("pat", project.env(**ARM)), ("oauth-m2m", oauth_env(project, **ARM))):
        planned = project.run("plan", env=env)
        assert planned.returncode in (0, 2), planned.stderr
        assert f"Databricks auth pinned to {name}" in planned.stderr
        applied = project.run("apply", "--auto-approve", env=env)
        assert applied.returncode == 0, applied.stderr
        no_oauth_secrets(planned.stdout + planned.stderr, applied.stdout + applied.stderr)

    (current,) = project.store().valid_tokens()
    raw_env = project.env(**ARM, TF_VAR_dlz_sas_token=current["SASToken"])
    with Sandbox(project.sandbox_dir, workspace_hosts=[BASE_CONFIG["databricks"]["host"]]) as sandbox:
        raw_env.update(sandbox.terraform_env())
        sandbox.workspace.add_token(DATABRICKS_PAT)

        def raw_plan(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode"],
                cwd=project.root(),
                env={**raw_env, **extra},
                capture_output=True,
                text=True,
                timeout=180,
            )

        unpinned = raw_plan()
        assert unpinned.returncode == 1
        assert "more than one authorization method configured: azure and pat" in unpinned.stderr
        pinned = raw_plan(DATABRICKS_AUTH_TYPE="pat")
        assert pinned.returncode == 0, pinned.stderr


def test_a_principal_without_rights_is_refused_before_anything_changes(project: Project) -> None:
    env = oauth_env(project)
    assert project.run("apply", "--auto-approve", env=env).returncode == 0
    store = project.store()
    ids = cluster_ids(project)
    # Someone removes the service principal from the admins and narrows its cluster rights.
    store.set_admin(SP_ID, False)
    for cid in ids.values():
        store.set_cluster_permission(WORKSPACE_KEY, cid, SP_ID, "CAN_ATTACH_TO")
    tokens = [t["SASToken"] for t in store.valid_tokens()]

    rotated = project.run("rotate", "--auto-approve", "--timeout", "60", env=env)
    assert rotated.returncode == 1
    (line,) = [x for x in rotated.stderr.splitlines() if x.startswith("error:")]
    assert f"sp-{SP_ID[:8]} lacks CAN_MANAGE on cluster" in line and "nothing was changed" in line
    assert [t["SASToken"] for t in store.valid_tokens()] == tokens  # no refresh happened

    project.config["clusters"][0]["autotermination_minutes"] = 90
    project.write_config()
    applied = project.run("apply", "--auto-approve", env=env)
    assert applied.returncode == 1 and "lacks CAN_MANAGE" in applied.stderr
    assert store.get_cluster(WORKSPACE_KEY, ids["aep-ingest"])["autotermination_minutes"] == 60  # not applied
