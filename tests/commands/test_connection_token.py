"""The Databricks token inside AEP's base connection, through the CLI on the sandbox: a
dedicated, bounded token per connection; status sees its expiry; rotation without a gap;
destroy revokes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import DATABRICKS_PAT
from tests.helpers.project import Project, applied

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

DAY_MS = 86_400_000
COMMENT = "dlz-provisioner: AEP base connection 'Databricks default aep-ingest' (environment default)"


def _me(store: Any) -> str:
    return str(store.principal_for_token(DATABRICKS_PAT)["id"])


def _connected(project: Project, *extra: str) -> dict[str, Any]:
    done = project.run("connect", "--cluster", "aep-ingest", "--json", *extra)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _token_of(store: Any) -> str:
    (connection,) = store.connections()
    return str(connection["auth"]["params"]["accessToken"])


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_connect_mints_a_dedicated_bounded_token_never_the_runs_own(project: Project) -> None:
    project.config["connection"] = {"token_lifetime_days": 30}
    project.write_config()
    applied(project)
    store = project.store()
    doc = _connected(project)

    value = _token_of(store)
    assert value != DATABRICKS_PAT and value.startswith("dapi")
    # The run's principal owns it; the comment names the tool, the environment and the connection.
    assert store.principal_for_token(value)["id"] == _me(store)
    (info,) = store.list_pats(_me(store))
    assert info["comment"] == COMMENT
    assert info["expiry_time"] - info["creation_time"] == 30 * DAY_MS
    # Its id and expiry are recorded on the connection and reported; its value nowhere.
    assert doc["token"]["tokenId"] == info["token_id"]
    (connection,) = store.connections()
    assert info["token_id"] in connection["description"]

    again = _connected(project)
    assert again["created"] is False and again["token"] == doc["token"]
    assert len(store.list_pats(_me(store))) == 1, "a second connect mints nothing"


def test_a_lifetime_above_the_workspace_maximum_is_refused_in_one_line(project: Project) -> None:
    applied(project)
    store = project.store()
    store.set_faults(**{"workspace.max_token_lifetime_days": 60})  # the default 90 is too long
    refused = project.run("connect", "--cluster", "aep-ingest")
    assert refused.returncode == 1
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "provision.yaml: connection.token_lifetime_days: 90" in line and "at most 60 days" in line
    assert store.connections() == [] and store.list_pats(_me(store)) == []

    project.config["connection"] = {"token_lifetime_days": 60}
    project.write_config()
    _connected(project)
    (info,) = store.list_pats(_me(store))
    assert info["expiry_time"] - info["creation_time"] == 60 * DAY_MS


def test_status_reports_the_token_exits_3_inside_warn_days_and_4_once_it_expired(project: Project) -> None:
    applied(project)
    _connected(project)
    store = project.store()
    (info,) = store.list_pats(_me(store))

    healthy = project.run("status", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    (item,) = json.loads(healthy.stdout)["connectionTokens"]["items"]
    assert item["cluster"] == "aep-ingest" and item["tokenId"] == info["token_id"]
    assert item["state"] == "ok" and item["daysLeft"] == 89

    project.config["connection"] = {"warn_days": 90}
    project.write_config()
    expiring = project.run("status")
    assert expiring.returncode == 3, expiring.stdout + expiring.stderr
    assert "AEP connection tokens (warning at 90 days)" in expiring.stdout
    assert "expiring" in expiring.stdout

    expired_now = project.run("sandbox", "expire-connection-token", sandbox=False)
    assert expired_now.returncode == 0, expired_now.stderr
    assert store.principal_for_token(_token_of(store)) is None  # the workspace refuses it now
    expired = project.run("status", "--json")
    assert expired.returncode == 4, expired.stdout + expired.stderr
    doc = json.loads(expired.stdout)
    assert doc["status"] == "drift" and doc["connectionTokens"]["items"][0]["state"] == "expired"


def test_a_revoked_token_is_exit_4_and_the_connection_stops_working(project: Project) -> None:
    applied(project)
    _connected(project)
    store = project.store()
    (info,) = store.list_pats(_me(store))
    store.delete_pat(_me(store), info["token_id"])  # revoked behind the tool's back
    assert store.pat_refused(_token_of(store))
    status = project.run("status")
    assert status.returncode == 4 and "revoked" in status.stdout
    verify = project.run("verify", "--json")
    connection = json.loads(verify.stdout)["aepConnections"][0]
    assert connection["works"] is False and "Invalid access token" in connection["detail"]
    assert verify.returncode == 4


def test_rotation_updates_the_connection_and_proves_the_new_token_before_revoking_the_old(project: Project) -> None:
    applied(project)
    first = _connected(project)["token"]
    store = project.store()
    old_value = _token_of(store)

    skipped = project.run("connect", "--rotate-token", "--if-expiring-within", "30", "--json")
    assert skipped.returncode == 0, skipped.stderr
    (entry,) = [c for c in json.loads(skipped.stdout)["connections"] if c["cluster"] == "aep-ingest"]
    assert entry["rotated"] is False and "89 days left" in entry["skipped"]
    assert _token_of(store) == old_value

    trace = project.dir / "trace.jsonl"
    rotated = project.run(
        "connect", "--rotate-token", "--cluster", "aep-ingest", env=project.env(PROVISION_SANDBOX_TRACE=str(trace))
    )
    assert rotated.returncode == 0, rotated.stderr
    new_value = _token_of(store)
    assert new_value != old_value and store.principal_for_token(new_value) is not None
    assert store.pat_refused(old_value), "the previous token is revoked"
    (info,) = store.list_pats(_me(store))
    assert info["token_id"] != first["tokenId"] and info["token_id"] in store.connections()[0]["description"]
    assert "AEP explored the connection with it" in rotated.stderr

    calls = [c for c in _journal(trace) if "/token/" in c["path"] or "/flowservice/connections/" in c["path"]]
    steps = [(c["method"], c["path"].rsplit("/", 1)[-1] if "/token/" in c["path"] else c["path"]) for c in calls]
    kinds = [
        "mint" if s == ("POST", "create") else
        "revoke" if s == ("POST", "delete") else
        "patch" if s[0] == "PATCH" else
        "explore" if str(s[1]).endswith("/explore") else "other"
        for s in steps
    ]  # fmt: skip
    order = [k for k in kinds if k != "other"]
    assert order == ["mint", "patch", "explore", "revoke"], steps
    assert all(c["status"] < 400 for c in calls), "nothing failed on the way"


def test_a_failed_revocation_of_the_old_token_is_named_and_the_rotation_stands(project: Project) -> None:
    applied(project)
    _connected(project)
    store = project.store()
    old_value = _token_of(store)
    store.set_faults(**{"workspace.fail": {"token/delete": 1}})
    rotated = project.run("connect", "--rotate-token", "--cluster", "aep-ingest")
    assert rotated.returncode == 0, rotated.stderr
    assert "could not revoke the previous token" in rotated.stderr
    assert _token_of(store) != old_value and not store.pat_refused(old_value)


def test_an_expired_token_is_rotated_by_the_scheduled_form(project: Project) -> None:
    applied(project)
    _connected(project)
    assert project.run("sandbox", "expire-connection-token", sandbox=False).returncode == 0
    store = project.store()
    dead = _token_of(store)
    done = project.run("connect", "--rotate-token", "--if-expiring-within", "7")
    assert done.returncode == 0, done.stderr
    assert _token_of(store) != dead and store.principal_for_token(_token_of(store)) is not None
    assert project.run("status").returncode == 0


def test_destroy_revokes_the_connection_token_and_names_what_it_left_in_aep(project: Project) -> None:
    applied(project)
    doc = _connected(project)
    store = project.store()
    value = _token_of(store)
    destroyed = project.run("destroy", "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr
    assert store.pat_refused(value)
    assert f"left AEP base connection {doc['connectionId']}" in destroyed.stderr
    assert f"its token {doc['token']['tokenId']} is revoked" in destroyed.stderr
    assert len(store.connections()) == 1, "the connection itself stays: AEP owns it"


def test_a_second_token_rotation_is_refused_by_the_environment_lock(project: Project) -> None:
    """The first rotation is held at its mint (its token/create took effect, the answer waits
    for a file); a second one on the same environment is refused in one line naming the first,
    before it reads or mints anything. The first then finishes: one working token, the old one
    revoked, no stray."""
    import subprocess
    import sys
    import time

    applied(project)
    _connected(project)
    store = project.store()
    me = _me(store)
    old = _token_of(store)
    release = project.dir / "release"
    store.set_faults(**{"workspace.hold_answer": {"token/create": str(release)}})
    argv = [sys.executable, "-m", "provisioner.main", "connect", "--rotate-token", "--cluster", "aep-ingest"]
    argv += ["--config", str(project.config_path), "--sandbox"]
    first = subprocess.Popen(
        argv, cwd=project.dir, env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while len(store.list_pats(me)) < 2:  # the connection's token and the first run's new one
        assert first.poll() is None and time.monotonic() < deadline, "the first rotation never reached its mint"
        time.sleep(0.05)

    refused = project.run("connect", "--rotate-token", "--cluster", "aep-ingest")

    release.touch()
    _, first_err = first.communicate(timeout=180)
    store.set_faults(**{"workspace.hold_answer": {}})
    assert first.returncode == 0, first_err
    assert refused.returncode == 1, refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
    assert "another run holds this environment's lock" in line, line
    assert "`provision connect` (host " in line and f"pid {first.pid})" in line, line
    (left,) = store.list_pats(me)  # the first run's token only: the old one is revoked, nothing was minted twice
    (connection,) = store.connections()
    assert left["token_id"] in connection["description"]
    assert store.pat_refused(old)
    assert store.principal_for_token(_token_of(store)) is not None


def test_a_killed_runs_leftover_token_is_revoked_once_it_is_old_and_a_fresh_one_is_kept(project: Project) -> None:
    """A run killed between mint and PATCH leaves a token nothing uses, carrying the comment.
    The next rotation revokes it once it is older than any run's mint-to-PATCH window; a young
    one may be another run's on its way to AEP, so it stays."""
    applied(project)
    _connected(project)
    store = project.store()
    me = _me(store)
    old_leftover, old_info = store.create_pat(me, COMMENT, 30 * 86_400)
    store.backdate_pat(old_info["token_id"], 2 * 3600)
    young_leftover, young_info = store.create_pat(me, COMMENT, 30 * 86_400)
    rotated = project.run("connect", "--rotate-token", "--cluster", "aep-ingest")
    assert rotated.returncode == 0, rotated.stderr
    assert store.pat_refused(old_leftover) and f"revoked leftover token {old_info['token_id']}" in rotated.stderr
    assert store.principal_for_token(young_leftover) is not None
    ids = {t["token_id"] for t in store.list_pats(me)}
    assert ids == {young_info["token_id"], *(t for t in ids if t in store.connections()[0]["description"])}
    assert len(ids) == 2
