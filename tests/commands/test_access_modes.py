"""Access modes, said before anything changes (issue 22, item 4), end to end with the real terraform:
`plan`/`apply` name a cluster dedicated to someone else and refuse one whose Spark-config SAS
would not be used; `verify` (and the probe closing `apply`) run no command where it cannot
run; `adopt` writes nothing for a cluster that cannot work. The sandbox's request journal
(PROVISION_SANDBOX_TRACE) shows what was, and was not, called."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from provisioner.sandbox.store import SANDBOX_USER
from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.project import Project, cluster_ids

ANA = "ana@example.com"


def _run(project: Project, trace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return project.run(*args, env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))


def _calls(trace: Path, suffix: str) -> int:
    lines = trace.read_text().splitlines() if trace.exists() else []
    return sum(json.loads(line)["path"].endswith(suffix) for line in lines)


def _said(done: subprocess.CompletedProcess[str], fact: str) -> list[str]:
    return [line for line in done.stderr.splitlines() if fact in line]


def test_a_cluster_dedicated_to_someone_else_is_named_before_apply_and_never_probed(project: Project) -> None:
    project.config["clusters"][1].update(data_security_mode="SINGLE_USER", single_user_name=ANA)
    project.write_config()

    planned = _run(project, project.dir / "plan.jsonl", "plan")
    assert planned.returncode == 2, planned.stderr  # a warning, not a refusal: Ana's own connection would work
    (line,) = _said(planned, "clusters.aep-explore")
    for fact in (f"dedicated (SINGLE_USER) to {ANA}", f"this run is {SANDBOX_USER}", "the DLZ probe cannot run"):
        assert fact in line, line
    assert f"single_user_name: {SANDBOX_USER}" in line and f"have {ANA} run `provision connect`" in line

    trace = project.dir / "apply.jsonl"
    applied = _run(project, trace, "apply", "--auto-approve")
    assert applied.returncode == 1, applied.stderr  # a probe could not run
    assert len(_said(applied, "clusters.aep-explore: dedicated")) == 1  # said before the change
    assert _said(applied, "aep-explore: not probed: dedicated (SINGLE_USER) to ana@example.com")
    assert _calls(trace, "/clusters/create") == 2  # both created: the SAS reaches Ana's cluster too
    assert _calls(trace, "/contexts/create") == 1  # only aep-ingest was probed
    assert project.store().dlz_access(WORKSPACE_KEY, cluster_ids(project)["aep-explore"])

    trace = project.dir / "verify.jsonl"
    verified = _run(project, trace, "verify")
    assert verified.returncode == 1, verified.stdout
    assert "! aep-explore: not probed: dedicated (SINGLE_USER) to ana@example.com" in verified.stdout
    assert _calls(trace, "/contexts/create") == 1
    assert project.store().open_contexts(WORKSPACE_KEY) == []


def test_auto_access_mode_is_refused_before_any_call(project: Project) -> None:
    project.config["clusters"][0].update(kind="CLASSIC_PREVIEW", data_security_mode="DATA_SECURITY_MODE_AUTO")
    project.write_config()
    for command in (("plan",), ("apply", "--auto-approve")):
        trace = project.dir / f"{command[0]}.jsonl"
        done = _run(project, trace, *command)
        assert done.returncode == 1, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert "clusters[0].data_security_mode: DATA_SECURITY_MODE_AUTO lets Databricks choose" in line
        assert "DATA_SECURITY_MODE_DEDICATED (or SINGLE_USER) with single_user_name" in line
        assert not trace.exists()  # not one request: AEP, IMS and the workspace untouched
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_a_policy_fixing_standard_access_is_refused_before_terraform(project: Project) -> None:
    shared = {"data_security_mode": {"type": "fixed", "value": "USER_ISOLATION", "hidden": True}}
    policy_id = str(project.store().create_policy(WORKSPACE_KEY, "Shared Compute", shared))
    project.config["clusters"][0]["policy_id"] = policy_id
    project.write_config()

    trace = project.dir / "apply.jsonl"
    done = _run(project, trace, "apply", "--auto-approve")
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"clusters.aep-ingest: data_security_mode (fixed by cluster policy {policy_id}): USER_ISOLATION" in line
    assert "external locations" in line and "nothing was changed" in line
    assert _calls(trace, "/clusters/create") == 0 and _calls(trace, "/secrets/put") == 0
    assert _calls(trace, "/credentials") == 0  # refused before AEP was asked
    assert not (project.root() / "terraform.tfstate").exists()
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_connect_mints_nothing_for_a_cluster_dedicated_to_someone_else(project: Project) -> None:
    project.config["clusters"][1].update(data_security_mode="SINGLE_USER", single_user_name=ANA)
    project.write_config()
    assert project.run("apply", "--auto-approve", "--no-verify").returncode == 0
    trace = project.dir / "connect.jsonl"
    done = _run(project, trace, "connect", "--cluster", "aep-explore")
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"clusters.aep-explore: dedicated (SINGLE_USER) to {ANA}" in line and "nothing was created" in line
    assert _calls(trace, "/token/create") == 0  # no PAT minted for a connection that could not use it
    assert project.store().connections() == []


def test_token_rotation_mints_nothing_for_a_cluster_dedicated_to_someone_else(project: Project) -> None:
    """The rotation's pre-check is plain `connect`'s: a token of this run's would replace, in AEP,
    one that may be the assigned user's working token with one the cluster refuses."""
    assert project.run("apply", "--auto-approve", "--no-verify").returncode == 0
    for name in ("aep-ingest", "aep-explore"):
        assert project.run("connect", "--cluster", name).returncode == 0
    # An admin dedicates aep-explore to Ana (Compute → Edit → Access mode), behind the tool's back.
    store = project.store()
    cid = cluster_ids(project)["aep-explore"]
    live = store.get_cluster(WORKSPACE_KEY, cid)
    kept = ("cluster_name", "spark_version", "node_type_id", "num_workers", "autotermination_minutes", "spark_conf")
    spec = {k: live[k] for k in kept if k in live}
    store.edit_cluster(
        WORKSPACE_KEY,
        {
            **spec,
            "custom_tags": live.get("custom_tags", {}),
            "cluster_id": cid,
            "data_security_mode": "SINGLE_USER",
            "single_user_name": ANA,
        },
    )
    before = {c["id"]: (c["description"], c["auth"]["params"]["accessToken"]) for c in store.connections()}

    trace = project.dir / "rotate-all.jsonl"
    done = _run(project, trace, "connect", "--rotate-token", "--json")
    assert done.returncode == 1, done.stderr
    assert _calls(trace, "/token/create") == 1  # aep-ingest's only
    rotated = {c["cluster"]: c for c in json.loads(done.stdout)["connections"]}
    assert rotated["aep-ingest"]["rotated"] is True  # the other cluster's rotation goes on
    assert rotated["aep-explore"]["rotated"] is False
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"clusters.aep-explore: dedicated (SINGLE_USER) to {ANA}" in line and "nothing was created" in line
    assert f"have {ANA} run `provision connect --rotate-token --cluster aep-explore`" in line

    trace = project.dir / "rotate-one.jsonl"
    done = _run(project, trace, "connect", "--rotate-token", "--cluster", "aep-explore")
    assert done.returncode == 1, done.stderr
    assert len(_said(done, f"clusters.aep-explore: dedicated (SINGLE_USER) to {ANA}")) == 1
    assert _calls(trace, "/token/create") == 0 and _calls(trace, "/token/delete") == 0
    after = {c["id"]: (c["description"], c["auth"]["params"]["accessToken"]) for c in store.connections()}
    (explore_id,) = [c["id"] for c in store.connections() if c["auth"]["params"]["clusterId"] == cid]
    assert after[explore_id] == before[explore_id]  # AEP still holds the token it held
    assert not store.pat_refused(before[explore_id][1])


def test_a_recreated_cluster_dedicated_to_someone_else_keeps_its_connection_unrepointed(project: Project) -> None:
    """apply repoints the connection of a re-created cluster with a token of the run's: not
    one minted for a cluster dedicated to someone else, who repoints it with `connect`."""
    assert project.run("apply", "--auto-approve", "--no-verify").returncode == 0
    assert project.run("connect", "--cluster", "aep-explore").returncode == 0
    store = project.store()
    old = cluster_ids(project)["aep-explore"]
    store.pin_cluster(WORKSPACE_KEY, old, pinned=False)
    store.permanent_delete_cluster(WORKSPACE_KEY, old)  # purged: apply re-creates it, dedicated to Ana now
    project.config["clusters"][1].update(data_security_mode="SINGLE_USER", single_user_name=ANA)
    project.write_config()
    (connection,) = store.connections()

    trace = project.dir / "apply.jsonl"
    applied = _run(project, trace, "apply", "--auto-approve", "--no-verify")
    assert applied.returncode == 0, applied.stderr
    new = cluster_ids(project)["aep-explore"]
    assert new != old
    assert _calls(trace, "/token/create") == 0  # no token minted for Ana's cluster
    (line,) = _said(applied, f"AEP base connection {connection['id']} still points at aep-explore's old cluster")
    assert (
        f"dedicated (SINGLE_USER) to {ANA}" in line
        and f"have {ANA} run `provision connect --cluster aep-explore`" in line
    )
    (after,) = store.connections()
    assert after["auth"]["params"]["clusterId"] == old and after["description"] == connection["description"]
