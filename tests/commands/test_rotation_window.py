"""What runs inside the revocation window of `provision rotate` (secret_scope mode).

The window opens when AEP answers the refresh. Before the restarts only one write belongs in
it: the `secrets/put` of the new value. Bookkeeping (the fingerprint put and the delete of
the old fingerprint) moves after it. Checked from the sandbox's request journal
(PROVISION_SANDBOX_TRACE): which calls came between the refresh and the restarts, in order;
no timing is asserted.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from tests.helpers.project import Project, applied


def _journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_only_the_value_write_precedes_the_restarts(project: Project) -> None:
    applied(project)
    trace = project.dir / "trace.jsonl"
    done = project.run("rotate", "--auto-approve", env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))
    assert done.returncode == 0, done.stderr
    calls = _journal(trace)
    refresh = max(
        i for i, c in enumerate(calls) if c["method"] == "POST" and str(c["path"]).endswith("/landingzone/credentials")
    )
    restarts = [i for i, c in enumerate(calls) if str(c["path"]).endswith("/clusters/restart")]
    assert restarts and restarts[0] > refresh, "the running clusters were restarted after the refresh"
    before = [str(c["path"]).split("/api/")[-1] for c in calls[refresh + 1 : restarts[0]]]
    # One put (the value); converge may read the secret's timestamp beside its first reads.
    assert [p for p in before if p in ("2.0/secrets/put", "2.0/secrets/delete")] == ["2.0/secrets/put"], before
    # The clusters were read in the pre-flight and nothing but the secret changed since: no
    # cluster is read again before its restart.
    assert not [p for p in before if p.endswith("clusters/get")], before
    during = [str(c["path"]) for c in calls[refresh + 1 : restarts[-1]]]
    assert not [p for p in during if p.endswith("/secrets/delete")], during
    # The bookkeeping did happen, after the window: status sees the secret as current.
    after = [str(c["path"]) for c in calls[restarts[-1] :]]
    assert sum(p.endswith("/secrets/put") for p in after) == 1
    status = project.run("status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_every_restart_is_issued_before_the_first_finishes_even_one_call_at_a_time(project: Project) -> None:
    """Waits do not hold the call bound: with `databricks.max_parallel: 1`, three clusters are
    still restarted together (one call in flight at a time), not one restart after another."""
    config = project.config
    config["databricks"]["max_parallel"] = 1
    config["clusters"].append({**config["clusters"][1], "name": "aep-third"})
    project.write_config()
    slow = project.env(PROVISION_SANDBOX_CLUSTER_START_SECONDS="4")
    assert project.run("apply", "--auto-approve", env=slow).returncode == 0
    trace = project.dir / "trace.jsonl"
    done = project.run("rotate", "--auto-approve", env={**slow, "PROVISION_SANDBOX_TRACE": str(trace)})
    assert done.returncode == 0, done.stderr
    calls = _journal(trace)
    refresh = max(
        float(str(c["end"]))
        for c in calls
        if c["method"] == "POST" and str(c["path"]).endswith("/landingzone/credentials")
    )
    state = project.store().snapshot()
    starts = [
        c["last_start"]
        for ws in state["workspaces"].values()
        for c in ws["clusters"].values()
        if c.get("last_start") and c["last_start"]["began"] >= refresh
    ]
    assert len(starts) == 3
    assert max(s["began"] for s in starts) < min(s["began"] + s["seconds"] for s in starts)
    # ... and one call in flight at a time: no two of the rotation's requests overlapped.
    first_done = min(s["began"] + s["seconds"] for s in starts)
    spans = sorted(
        (float(str(c["start"])), float(str(c["end"])))
        for c in calls
        if c["route"] == "/ws/" and refresh <= float(str(c["start"])) < first_done
    )
    assert len(spans) >= 4  # the put and three restarts at least
    assert all(a_end <= b_start + 0.005 for (_, a_end), (b_start, _) in itertools.pairwise(spans))
