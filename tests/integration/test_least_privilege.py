"""A least-privilege CI principal (issue 22, done-when): a service principal an admin demoted
through SCIM (`PATCH Groups/<admins>` removing it, as the workspace UI and SCIM clients do),
with CAN_MANAGE on the clusters it creates and WRITE on an existing scope, runs the whole
lifecycle with the real terraform: no error, no cluster re-created, one clear line about
what it cannot do (pin). Registering it again from the environment (`--sandbox` does at
every run) must not make it an admin again."""

from __future__ import annotations

import json
from typing import Any

import requests

from provisioner.sandbox import Sandbox
from tests.helpers.config import BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.identity import SP_ID, SP_SECRET, no_oauth_secrets, oauth_env
from tests.helpers.project import Project, cluster_ids

SCIM = "/api/2.0/preview/scim/v2"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _scim(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    answer = requests.request(
        method,
        sandbox.workspace_url(WORKSPACE_HOST) + SCIM + path,
        headers={"Authorization": f"Bearer {DATABRICKS_PAT}"},  # the workspace admin
        timeout=30,
        **kwargs,
    )
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else {}


def demote(project: Project) -> None:
    """An admin removes the service principal from `admins` through SCIM."""
    with Sandbox(
        project.sandbox_dir,
        workspace_hosts=[WORKSPACE_HOST],
        databricks_token=DATABRICKS_PAT,
        databricks_client=(SP_ID, SP_SECRET),
    ) as sandbox:
        (admins,) = _scim(sandbox, "GET", "/Groups", params={"filter": 'displayName eq "admins"'})["Resources"]
        (sp,) = _scim(sandbox, "GET", "/ServicePrincipals", params={"filter": f'applicationId eq "{SP_ID}"'})[
            "Resources"
        ]
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": f'members[value eq "{sp["id"]}"]'}]}
        _scim(sandbox, "PATCH", f"/Groups/{admins['id']}", json=body)


def test_a_non_admin_service_principal_runs_the_whole_lifecycle(project: Project) -> None:
    scope = BASE_CONFIG["sas"]["secret_scope"]
    project.config["sas"]["manage_scope"] = False  # an admin made the scope and granted WRITE
    project.write_config()
    demote(project)
    store = project.store()
    store.create_scope(WORKSPACE_KEY, scope)
    store.put_scope_acl(WORKSPACE_KEY, scope, SP_ID, "WRITE")
    env = oauth_env(project)

    planned = project.run("plan", env=env)
    assert planned.returncode == 2, planned.stderr
    said = " ".join(planned.stderr.split())
    assert "not pinning aep-ingest, aep-explore" in said and "only admins may pin" in said
    assert said.count("not pinning") == 1

    applied = project.run("apply", "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr
    ids = cluster_ids(project)
    assert all(not store.is_pinned(WORKSPACE_KEY, cid) for cid in ids.values())
    assert project.run("plan", env=env).returncode == 0  # nothing tainted, nothing to replace

    again = project.run("apply", "--auto-approve", env=env)
    assert again.returncode == 0, again.stderr
    rotated = project.run("rotate", "--auto-approve", "--timeout", "60", env=env)
    assert rotated.returncode == 0, rotated.stderr
    status = project.run("status", "--json", env=env)
    assert status.returncode in (0, 3), status.stderr
    assert json.loads(status.stdout)["databricksIdentity"]["admin"] is False  # still not an admin
    verified = project.run("verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert cluster_ids(project) == ids  # never re-created
    assert all(store.dlz_access(WORKSPACE_KEY, cid) for cid in ids.values())

    destroyed = project.run("destroy", "--auto-approve", env=env)
    assert destroyed.returncode == 0, destroyed.stderr
    assert store.list_clusters(WORKSPACE_KEY) == []
    principal = store.find_principal(SP_ID)
    assert principal is not None and "admins" not in principal["groups"]
    no_oauth_secrets(*(r.stdout + r.stderr for r in (planned, applied, again, rotated, status, verified, destroyed)))


def test_asking_a_non_admin_run_to_pin_is_refused_before_anything_changes(project: Project) -> None:
    project.config["clusters"][0]["is_pinned"] = True
    project.write_config()
    demote(project)
    done = project.run("plan", env=oauth_env(project))
    assert done.returncode == 1
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "clusters.aep-ingest.is_pinned: true needs a workspace admin" in line
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_the_preflight_reads_the_identitys_level_from_the_acl_whoever_may_read_it(project: Project) -> None:
    env = oauth_env(project)
    assert project.run("apply", "--auto-approve", env=env).returncode == 0
    demote(project)
    store = project.store()
    ids = cluster_ids(project)
    for cid in ids.values():
        store.set_cluster_permission(WORKSPACE_KEY, cid, SP_ID, "CAN_ATTACH_TO")
    # Who may read a cluster's ACL is not documented: here anyone attached to it may.
    store.set_faults(**{"workspace.permissions_read_level": "CAN_ATTACH_TO"})
    tokens = [t["SASToken"] for t in store.valid_tokens()]

    rotated = project.run("rotate", "--auto-approve", "--timeout", "60", env=env)
    assert rotated.returncode == 1
    (line,) = [x for x in rotated.stderr.splitlines() if x.startswith("error:")]
    assert f"sp-{SP_ID[:8]} lacks CAN_MANAGE on cluster" in line and "(it has CAN_ATTACH_TO)" in line
    assert "nothing was changed" in line
    assert [t["SASToken"] for t in store.valid_tokens()] == tokens  # no refresh happened
