"""Each fact read once per command (issues 24 and 25), outside the rotation (see
tests/operations/rotate/test_reads_once.py): `plan` and `apply` read each cluster policy, and
the workspace's runtimes a policy's special value needs, once — though the access-mode check
and the render both need them; `connect` reads its cluster once, to judge its access mode and
to see it running.

Counted, not timed, in the sandbox's request journal (PROVISION_SANDBOX_TRACE). The stand-in
provider reads neither policies nor runtimes for the rendered root, so every count is the tool's.
"""

from __future__ import annotations

import json
from collections import Counter

from tests.helpers.config import WORKSPACE_KEY
from tests.helpers.project import Project

LATEST_LTS = "16.4.x-scala2.12"  # the sandbox workspace's newest LTS runtime (provisioner/sandbox/catalog.py)
LTS = {"spark_version": {"type": "fixed", "value": "auto:latest-lts", "hidden": True}}


def _counted(project: Project, name: str, *args: str) -> Counter[str]:
    trace = project.dir / f"{name}.jsonl"
    done = project.run(*args, env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))
    assert done.returncode in (0, 2), done.stdout + done.stderr
    calls = [json.loads(line) for line in trace.read_text().splitlines()]
    return Counter(str(c["path"]).split("?")[0].rsplit("/api/", 1)[-1] for c in calls)


def test_plan_and_apply_read_each_policy_once_and_connect_its_cluster_once(project: Project) -> None:
    store = project.store()
    store.ensure_workspace(WORKSPACE_KEY)
    # Two policies, each naming a special runtime value (so each needs the workspace's runtimes).
    ingest = store.create_policy(
        WORKSPACE_KEY, "LTS, tagged", {**LTS, "custom_tags.team": {"type": "fixed", "value": "data"}}
    )
    explore = store.create_policy(WORKSPACE_KEY, "LTS only", LTS)
    for cluster, policy_id in zip(project.config["clusters"], (ingest, explore), strict=True):
        cluster.update(spark_version=LATEST_LTS, policy_id=str(policy_id))
    project.write_config()

    for name, args in (
        ("plan", ("plan",)),
        ("apply", ("apply", "--auto-approve", "--no-verify")),
        ("again", ("plan",)),
    ):
        calls = _counted(project, name, *args)
        assert calls["2.0/policies/clusters/get"] == 2, (name, calls)
        assert calls["2.1/clusters/spark-versions"] + calls["2.0/clusters/spark-versions"] == 1, (name, calls)

    calls = _counted(project, "connect", "connect", "--cluster", "aep-ingest")
    assert calls["2.1/clusters/get"] + calls["2.0/clusters/get"] == 1, calls
    assert calls["2.0/token/create"] == 1
