"""Guarantee: `provision` killed with SIGKILL at the worst moment strands nothing.

Kill point: Terraform is creating a cluster — the workspace has made it, its answer is held by
the sandbox barrier `workspace.hold_answer` (a file the test creates). The workspace is a
`provision sandbox serve` in a process of its own (PROVISION_SANDBOX_SERVER), so it lives on
after the command dies, as a real one does. Afterwards: Terraform recorded what it created,
no process of the run is left (none re-parented to init), and the next apply converges
without a duplicate.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.processes import cmdline, descendants, wait_until
from tests.helpers.project import Project, applied, state_cluster_ids, workspace_cluster_ids
from tests.helpers.sandbox import serving
from tests.helpers.zygote import STARTED_PROVIDERS

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

MARK = "DLZ_KILL_TEST"


def marked_processes(mark: str) -> dict[int, int]:
    """pid -> parent pid of every process whose environment carries `MARK=mark`."""
    needle = f"{MARK}={mark}".encode()
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def describe(pids: dict[int, int]) -> str:
    lines = []
    for pid, ppid in sorted(pids.items()):
        lines.append(f"pid {pid} (ppid {ppid}): {(cmdline(pid) or '?')[:160]}")
    return "\n".join(lines)


@pytest.fixture
def served(project: Project) -> Iterator[str]:
    """`provision sandbox serve` for the project; yields the URL other commands attach to."""
    with serving(project, env=project.env(**STARTED_PROVIDERS)) as serve:
        yield serve.url


def test_kill_9_during_cluster_create_terraform_records_it_and_nothing_is_orphaned(
    project: Project, served: str, tmp_path: Path
) -> None:
    done = project.run("render")
    assert done.returncode == 0, done.stderr
    release = tmp_path / "release-create"
    store = project.store()
    store.set_faults(workspace_hold_answer={"clusters/create": str(release)})
    mark = uuid.uuid4().hex
    env = project.env(**{**STARTED_PROVIDERS, "PROVISION_SANDBOX_SERVER": served, MARK: mark})
    argv = [sys.executable, "-m", "provisioner.main", "apply", "--auto-approve", "--config", str(project.config_path)]
    apply = subprocess.Popen(
        [*argv, "--sandbox"],
        cwd=project.dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The barrier: a cluster exists in the workspace, and Terraform has not heard so.
        wait_until(lambda: bool(workspace_cluster_ids(project)), "a cluster create reached the workspace")
        tree = descendants(apply.pid)
        assert tree, "terraform should be running"
        apply.send_signal(signal.SIGKILL)
        apply.wait(timeout=30)
    finally:
        release.touch()
    # Terraform outlives us only to finish: every process of the run ends, none left under init.
    try:
        wait_until(lambda: not marked_processes(mark), "every process of the killed run exits")
    except pytest.fail.Exception:
        left = marked_processes(mark)
        report = describe(left)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        pytest.fail("left running after the kill:\n" + report)
    store.clear_faults()
    created = workspace_cluster_ids(project)
    assert created, "the held create took effect"
    assert state_cluster_ids(project) == created, "Terraform did not record what it created"
    assert not (project.root() / ".terraform.tfstate.lock.info").exists(), "state lock left behind"
    # After the interruption `status` names one command, and it is the one that finishes the job.
    status = project.run("status")
    assert status.returncode in (0, 4), status.stdout + status.stderr
    assert set(re.findall(r"`(provision [^`]*)`", status.stdout)) <= {"provision apply"}, status.stdout
    # The next apply (a sandbox of its own, the same workspace state) converges without a duplicate.
    again = project.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    names = [c["cluster_name"] for c in store.list_clusters(WORKSPACE_KEY)]
    assert sorted(names) == sorted(c["name"] for c in project.config["clusters"]), names
    assert state_cluster_ids(project) == workspace_cluster_ids(project)


def kill_9_while_create_is_held(project: Project, tmp_path: Path, env: dict[str, str], mark: str) -> None:
    """Start `apply`, wait until the workspace has made a cluster whose answer is held, then
    kill -9 every process of the run at once (the runner's machine is lost), release the answer."""
    release = tmp_path / "release-create"
    store = project.store()
    store.set_faults(workspace_hold_answer={"clusters/create": str(release)})
    argv = [sys.executable, "-m", "provisioner.main", "apply", "--auto-approve", "--config", str(project.config_path)]
    apply = subprocess.Popen(
        [*argv, "--sandbox"],
        cwd=project.dir,
        env={**env, MARK: mark},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: bool(workspace_cluster_ids(project)), "a cluster create reached the workspace")
        for pid in [apply.pid, *descendants(apply.pid)]:
            os.kill(pid, signal.SIGKILL)
        apply.wait(timeout=30)
        wait_until(lambda: not marked_processes(mark), "every process of the killed run is gone")
    finally:
        release.touch()
    store.clear_faults()


def test_a_cluster_whose_create_answer_was_lost_is_named_by_status_and_imported_by_apply(
    project: Project, served: str, tmp_path: Path
) -> None:
    """Terraform itself dies with the answer in flight (the runner's machine is lost): the
    cluster exists, no state names it. Before: `status` said NOT_CREATED and the next apply
    made a second cluster of that name; nothing ever named the first."""
    done = project.run("render")
    assert done.returncode == 0, done.stderr
    kill_9_while_create_is_held(
        project, tmp_path, project.env(**STARTED_PROVIDERS, PROVISION_SANDBOX_SERVER=served), uuid.uuid4().hex
    )
    stranded = workspace_cluster_ids(project) - state_cluster_ids(project)
    assert stranded, "the kill left a cluster the state does not know"

    status = project.run("status")
    assert status.returncode == 4, status.stdout + status.stderr
    for cluster_id in stranded:
        (line,) = [ln for ln in status.stdout.splitlines() if cluster_id in ln and "!" in ln]
        assert "interrupted apply" in line, line
    commands = {c for c in re.findall(r"`(provision [^`]*)`", status.stdout)}
    assert commands == {"provision apply"}, status.stdout

    # What a reviewer sees is what apply does: the plan imports it too.
    plan = project.run("plan")
    assert plan.returncode == 2, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert f"{len(stranded)} to import" in plan.stdout and "instead of creating a duplicate" in plan.stderr
    assert not (project.root() / "recovered.tf").exists()

    again = project.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "instead of creating a duplicate" in again.stderr
    names = [c["cluster_name"] for c in project.store().list_clusters(WORKSPACE_KEY)]
    assert sorted(names) == sorted(c["name"] for c in project.config["clusters"]), names
    assert stranded <= state_cluster_ids(project) == workspace_cluster_ids(project)
    assert not (project.root() / "recovered.tf").exists()
    after = project.run("status")
    assert after.returncode == 0, after.stdout + after.stderr


def test_a_plan_file_left_by_a_killed_apply_is_removed_by_the_next_command(
    project: Project, served: str, tmp_path: Path
) -> None:
    """Inline mode: `apply-<pid>.tfplan` holds the live token. kill -9 of `apply` mid-apply
    left it forever; the next command on the root deletes it — not one a live run is using."""
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    done = project.run("render")
    assert done.returncode == 0, done.stderr
    plans = project.root() / ".terraform"
    release = tmp_path / "release-create"
    project.store().set_faults(workspace_hold_answer={"clusters/create": str(release)})
    mark = uuid.uuid4().hex
    argv = [sys.executable, "-m", "provisioner.main", "apply", "--auto-approve", "--config", str(project.config_path)]
    apply = subprocess.Popen(
        [*argv, "--sandbox"],
        cwd=project.dir,
        env=project.env(**{**STARTED_PROVIDERS, "PROVISION_SANDBOX_SERVER": served, MARK: mark}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: bool(workspace_cluster_ids(project)), "a cluster create reached the workspace")
        (left,) = plans.glob("apply-*.tfplan")
        assert left.name == f"apply-{apply.pid}.tfplan"
        apply.send_signal(signal.SIGKILL)
        apply.wait(timeout=30)
    finally:
        release.touch()
    wait_until(lambda: not marked_processes(mark), "every process of the killed run exits")
    project.store().clear_faults()
    assert left.exists(), "nothing of the killed run could remove it"
    # A live run's plan (this test process's pid, alive since before the file was written) stays.
    live = plans / f"apply-{os.getpid()}.tfplan"
    live.write_bytes(b"PK")

    status = project.run("status")

    assert not left.exists(), status.stderr
    assert live.exists(), "a plan file of a running process was removed"
    assert "left by a run that was killed" in status.stderr


def test_apply_removes_the_plan_it_superseded(project: Project) -> None:
    """`plan` saves .terraform/dlz-provisioner.tfplan (inline mode: with the token); an `apply`
    that plans afresh makes it stale, and it went on lying there."""
    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    planned = project.run("plan")
    assert planned.returncode == 2, planned.stdout[-2000:] + planned.stderr[-2000:]
    saved = project.root() / ".terraform" / "dlz-provisioner.tfplan"
    assert saved.exists()
    apply_run = project.run("apply", "--auto-approve")
    assert apply_run.returncode == 0, apply_run.stdout[-2000:] + apply_run.stderr[-2000:]
    assert not saved.exists()
    assert not list((project.root() / ".terraform").glob("*.tfplan"))


def test_a_stray_no_configured_cluster_takes_is_named_by_status_apply_and_destroy(project: Project) -> None:
    """A tagged cluster of this environment that no state knows and no configured cluster can
    take (its name left provision.yaml since the killed apply made it) is never silently kept
    or adopted: `status` reports it as drift, `apply` and `destroy` name it with the command that
    deletes it — and a cluster tagged for another environment is none of this one's business."""
    applied(project)
    store = project.store()
    tags = {"dlz-provisioner-environment": "default", "dlz-provisioner-cluster": "aep-old"}
    stray = store.add_cluster(WORKSPACE_KEY, {"cluster_name": "aep-old", "custom_tags": tags}, cluster_source="API")
    other = {**tags, "dlz-provisioner-environment": "prod"}
    store.add_cluster(WORKSPACE_KEY, {"cluster_name": "aep-old", "custom_tags": other}, cluster_source="API")
    # status lists every cluster only when a configured one is missing from the state
    project.config["clusters"].append({**project.config["clusters"][1], "name": "aep-new"})
    project.write_config()

    status = project.run("status")
    assert status.returncode == 4, status.stdout + status.stderr
    (line,) = [ln for ln in status.stdout.splitlines() if stray in ln and "!" in ln]
    assert "interrupted apply" in line and f"permanent-delete {stray}" in line, line

    apply_run = project.run("apply", "--auto-approve")
    assert apply_run.returncode == 0, apply_run.stdout[-2000:] + apply_run.stderr[-2000:]
    assert f"permanent-delete {stray}" in apply_run.stderr
    assert stray not in state_cluster_ids(project)

    destroyed = project.run("destroy", "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout[-2000:] + destroyed.stderr[-2000:]
    (named,) = [ln for ln in destroyed.stderr.splitlines() if stray in ln]
    assert "not destroyed" in named and f"permanent-delete {stray}" in named, named
    assert len(store.list_clusters(WORKSPACE_KEY)) == 2, "the stray and the other environment's cluster are left alone"


def test_clusters_made_before_the_tags_are_not_restarted_to_gain_them(project: Project) -> None:
    """The tags are set on create; a cluster made by an earlier version (without them) plans no
    change — no clusters/edit, so no restart and no pending change that would stop `rotate`."""
    applied(project)
    store = project.store()
    with store._txn() as state:  # as an earlier version left them: no tool tags
        for cluster in state["workspaces"][WORKSPACE_KEY]["clusters"].values():
            tags = cluster["spec"].get("custom_tags") or {}
            for key in ("dlz-provisioner-environment", "dlz-provisioner-cluster"):
                tags.pop(key, None)
    assert all(
        "dlz-provisioner-cluster" not in (c.get("custom_tags") or {}) for c in store.list_clusters(WORKSPACE_KEY)
    )
    planned = project.run("plan")
    assert planned.returncode == 0, planned.stdout[-2000:] + planned.stderr[-2000:]
    # A config change elsewhere in custom_tags still applies, and the tool's tags stay absent.
    project.config["clusters"][0]["custom_tags"]["team"] = "platform"
    project.write_config()
    applied(project)
    (ingest,) = [c for c in store.list_clusters(WORKSPACE_KEY) if c["cluster_name"] == "aep-ingest"]
    assert ingest["custom_tags"]["team"] == "platform"
    assert "dlz-provisioner-cluster" not in ingest["custom_tags"]


def test_a_state_a_killed_terraform_left_empty_is_put_back_before_the_next_plan(project: Project) -> None:
    """Terraform writes its local state in place: a run killed between the truncation and the
    write leaves an empty file beside the backup of the state it started from."""
    applied(project)
    state = project.root() / "terraform.tfstate"
    managed = state_cluster_ids(project)
    state.with_name("terraform.tfstate.backup").write_bytes(state.read_bytes())
    os.truncate(state, 0)
    plan = project.run("plan")
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert "Terraform was killed while it wrote the state" in plan.stderr
    assert state_cluster_ids(project) == managed == workspace_cluster_ids(project)
