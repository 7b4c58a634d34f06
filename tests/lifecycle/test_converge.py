"""Issue 11 item 2: converge cannot loop or lie — end to end on the sandbox with the real terraform.

The knobs make the workspace behave as real ones can: the secrets service's clock ahead of
the clusters service's, `last_restarted_time` lagging the restart, a restart that fails to
launch, a restart slower than `--timeout`.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.config import WORKSPACE_KEY as WS
from tests.helpers.output import error_lines, no_secrets
from tests.helpers.project import access, applied, cluster_ids, make_project, token


def _restarts(project, ids: dict[str, str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    store = project.store()
    return {name: store.restart_calls(WS, cid) for name, cid in ids.items()}


def test_clock_skew_between_secrets_and_clusters_restarts_each_cluster_once(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    ids = cluster_ids(project)
    project.store().set_faults(**{"workspace.secrets_clock_skew_seconds": 3600})

    done = project.run("rotate", "--auto-approve", "--timeout", "45")

    assert done.returncode == 0, done.stderr
    assert _restarts(project, ids) == {"aep-ingest": 1, "aep-explore": 1}
    assert "clocks differ" in done.stderr  # said why the clock comparison was not trusted again
    assert access(project) == {"aep-ingest": True, "aep-explore": True}
    no_secrets(done, token(project))


def test_last_restarted_time_lag_restarts_each_cluster_once(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path, "inline"))
    ids = cluster_ids(project)
    project.store().set_faults(**{"workspace.restart_time_lag_seconds": 30})

    done = project.run("rotate", "--auto-approve", "--timeout", "45")

    assert done.returncode == 0, done.stderr
    # inline: the provider's edit restarts each cluster; converge never adds a second restart.
    assert sum(_restarts(project, ids).values()) <= 2
    assert max(_restarts(project, ids).values()) <= 1
    assert access(project) == {"aep-ingest": True, "aep-explore": True}


def test_lag_in_secret_scope_mode_is_judged_by_the_restart(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    ids = cluster_ids(project)
    project.store().set_faults(**{"workspace.restart_time_lag_seconds": 30})

    done = project.run("rotate", "--auto-approve", "--timeout", "45")

    assert done.returncode == 0, done.stderr
    assert _restarts(project, ids) == {"aep-ingest": 1, "aep-explore": 1}
    assert access(project) == {"aep-ingest": True, "aep-explore": True}


def test_a_failed_restart_is_reported_with_its_termination_reason_and_the_others_converge(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    project.store().set_faults(**{"workspace.restart_fails": 1})

    done = project.run("rotate", "--auto-approve", "--timeout", "45")

    assert done.returncode == 1
    errors = error_lines(done)
    assert len(errors) == 1, done.stderr
    line = errors[0]
    assert "1 of 2 cluster(s)" in line
    assert "went TERMINATED while starting: CLOUD_PROVIDER_LAUNCH_FAILURE (CLOUD_FAILURE)" in line
    assert "azure_error_code=OperationNotAllowed" in line
    assert "provision rotate --resume" in line
    reach = access(project)
    failed = [name for name in reach if re.search(rf"\b{name} \(", line)]
    assert len(failed) == 1, line
    assert reach == {name: name not in failed for name in reach}  # the other one converged
    no_secrets(done, token(project))


def test_timeout_is_honoured_with_progress_per_cluster(tmp_path: Path) -> None:
    project = applied(make_project(tmp_path))
    slow = project.env(PROVISION_SANDBOX_CLUSTER_START_SECONDS="60")

    done = project.run("rotate", "--auto-approve", "--timeout", "3", env=slow)

    assert done.returncode == 1
    errors = error_lines(done)
    assert len(errors) == 1, done.stderr
    assert "2 of 2 cluster(s)" in errors[0]
    assert errors[0].count("after the 3s timeout (--timeout)") == 2
    for name in ("aep-ingest", "aep-explore"):
        assert re.search(rf"{name} \([^)]+\): restarting", done.stderr), done.stderr
