"""Past one runner, on a real PostgreSQL state backend (Terraform's `pg`, started by these tests).

1. 24 environments fanned out over 4 "runners" — separate processes, each with its own
   checkout, HOME and caches, sharing one PostgreSQL backend and one sandbox (the AEP and
   Databricks "cloud") — each planning its share of `provision envs --json` as a CI matrix
   would, then one merge: every environment planned exactly once, the merged comment
   correct, within GitHub's limit and free of secrets.
2. State locking keeps parallel runners honest: while an apply of one environment holds its
   lock, a plan of another environment runs with `--lock-timeout 0s` (any wait would fail
   it) — and a second apply of the same environment waits for the lock and then finds
   nothing to do.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from provisioner.review.plan_summary import GITHUB_COMMENT_LIMIT
from provisioner.review.review_comment import MARKER
from provisioner.sandbox.store import SandboxStore
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT
from tests.helpers.leaks import Needles
from tests.helpers.pg import SCHEMA, PgServer
from tests.helpers.processes import finish, start, wait_until
from tests.helpers.project import Project
from tests.helpers.zygote import provision_python

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

RUNNERS = 4
MERGE_OUT = ("--expect", "envs.json", "--out", "comment.md", "--out", "merged.json")
ENVIRONMENTS = [f"e{i:02d}" for i in range(1, 25)]
BROKEN = "e13"  # its cluster names a policy the workspace lacks: one line, after the config loaded, before init
HOSTS = [f"https://adb-{n}{n}{n}{n}000000000000.{n}.azuredatabricks.net" for n in range(1, 5)]


def fleet_config() -> dict[str, Any]:
    config = copy.deepcopy(BASE_CONFIG)
    config["terraform"]["backend"] = {"type": "pg"}  # one schema per environment (dlz_<env>)
    environments: dict[str, Any] = {}
    for i, name in enumerate(ENVIRONMENTS):
        overlay: dict[str, Any] = {
            "aep": {"sandbox": name},
            "databricks": {"host": HOSTS[i % len(HOSTS)]},
            "sas": {"secret_scope": f"aep-dlz-{name}"},  # environments share workspaces, not scopes
        }
        if name == BROKEN:
            # Not a user-set DLZ key (refused at load since issue 27, which would stop every
            # environment of the file): a failure of this environment alone.
            overlay["clusters"] = [{**BASE_CONFIG["clusters"][1], "policy_id": "no-such-policy"}]
        environments[name] = overlay
    config["environments"] = environments
    return config


def runner_project(base: Path, name: str, config: dict[str, Any], pg: PgServer, cloud: Path) -> Project:
    """A runner: its own checkout (provision.yaml), HOME and caches; the shared backend and cloud."""
    directory = base / name
    (directory / "home").mkdir(parents=True)
    project = Project(
        directory,
        copy.deepcopy(config),
        extra_env={"PG_CONN_STR": pg.conn_str, "PROVISION_SANDBOX_DIR": str(cloud)},
    )
    project.write_config()
    return project


def test_24_environments_on_4_runners_each_planned_once_and_merged(
    tmp_path_factory: pytest.TempPathFactory, pg: PgServer
) -> None:
    base = tmp_path_factory.mktemp("fleet")
    cloud = base / "cloud"  # AEP + the workspaces: one world for every runner
    config = fleet_config()
    runners = [runner_project(base, f"runner{r}", config, pg, cloud) for r in range(RUNNERS)]

    # The matrix, as the CI's first job computes it.
    listed = runners[0].run("envs", "--json", sandbox=False)
    assert listed.returncode == 0, listed.stderr
    matrix = [entry["env"] for entry in json.loads(listed.stdout)["include"]]
    assert matrix == ENVIRONMENTS
    (base / "envs.json").write_text(listed.stdout)

    # Each runner plans its share, one environment per "job", all runners at once.
    procs = []
    for r, runner in enumerate(runners):
        share = matrix[r::RUNNERS]
        script = "".join(
            f'"$PY" -m provisioner.main plan --env {env} --summary plan-{env}.json --lock-timeout 1m '
            f'--config provision.yaml --sandbox > log-{env}.txt 2>&1; echo "{env} $?" >> codes.txt\n'
            for env in share
        )
        procs.append(
            subprocess.Popen(
                ["bash", "-c", script],
                cwd=runner.dir,
                env={**runner.env(), "PY": provision_python()},
                stdin=subprocess.DEVNULL,
            )
        )
    for proc in procs:
        assert proc.wait(timeout=1500) == 0

    codes: dict[str, int] = {}
    summaries: list[Path] = []
    for runner in runners:
        for line in (runner.dir / "codes.txt").read_text().splitlines():
            env, code = line.split()
            assert env not in codes, f"{env} planned twice"
            codes[env] = int(code)
        summaries += sorted(runner.dir.glob("plan-*.json"))
    assert sorted(codes) == ENVIRONMENTS, "every environment planned exactly once"
    logs = {p.name: p.read_text() for r in runners for p in r.dir.glob("log-*.txt")}
    unexpected = {env for env, code in codes.items() if code != 2} - {BROKEN}
    assert not unexpected, "\n\n".join(f"{env}:\n{logs[f'log-{env}.txt'][-2500:]}" for env in sorted(unexpected))
    assert codes[BROKEN] == 1
    assert len(summaries) == len(ENVIRONMENTS)
    # One state schema per environment, created by its own runner; no lock left behind.
    schemas = {row[0] for row in pg.query("SELECT schema_name FROM information_schema.schemata")}
    assert {f"dlz_{env}" for env in ENVIRONMENTS if env != BROKEN} <= schemas
    assert f"dlz_{BROKEN}" not in schemas
    assert pg.advisory_locks() == 0

    merged = subprocess.run(
        [provision_python(), "-m", "provisioner.main", "summary", "merge", *map(str, summaries), *MERGE_OUT],
        cwd=base,
        env=runners[0].env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert merged.returncode == 0, merged.stderr
    comment = (base / "comment.md").read_text()
    doc = json.loads((base / "merged.json").read_text())
    assert len(comment) <= GITHUB_COMMENT_LIMIT
    assert comment.startswith(
        f"{MARKER}\n### dlz-provisioner plan: 24 environments, 23 with changes, 0 unchanged, 1 failed"
    )
    rows = [line for line in comment.split("<details>")[0].splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [BROKEN] + [e for e in ENVIRONMENTS if e != BROKEN]
    assert "**failed**" in rows[0] and "no cluster policy no-such-policy" in rows[0]
    totals = {json.loads(p.read_text())["environment"]: json.loads(p.read_text()).get("totals") for p in summaries}
    for row in rows[1:]:
        t = totals[row.split("`")[1]]
        assert t["add"] > 0 and f"| changes | {t['import']} | {t['add']} | {t['change']} | {t['destroy']} |" in row
    assert comment.count("<details>") == 23
    assert [r["environment"] for r in doc["results"]] == [BROKEN] + [e for e in ENVIRONMENTS if e != BROKEN]
    assert (doc["environments"], doc["withChanges"], doc["failed"]) == (24, 23, 1)

    # Nothing a CI system would upload holds a secret.
    needles = Needles()
    needles.add("AEP_SECRET", AEP_SECRET)
    needles.add("DATABRICKS_PAT", DATABRICKS_PAT)
    needles.add("PG_PASSWORD", pg.password)
    needles.add_from_store(SandboxStore(cloud))
    assert sum(1 for k in needles.secrets if k.startswith("sas#") and not k.endswith(".sig")) == len(ENVIRONMENTS)
    hits = [
        h
        for p in [*summaries, base / "comment.md", base / "merged.json"]
        for h in needles.scan_bytes(p.read_bytes(), p.name)
    ]
    assert not hits, hits


def test_different_environments_never_wait_and_one_environment_serializes(
    tmp_path_factory: pytest.TempPathFactory, pg: PgServer
) -> None:
    base = tmp_path_factory.mktemp("locks")
    config = copy.deepcopy(BASE_CONFIG)
    config["terraform"]["backend"] = {"type": "pg"}
    config["environments"] = {
        name: {"aep": {"sandbox": name}, "sas": {"secret_scope": f"aep-dlz-{name}"}} for name in ("lock-a", "lock-b")
    }
    project = runner_project(base, "project", config, pg, base / "cloud")
    workspace = BASE_CONFIG["databricks"]["host"].removeprefix("https://")
    # A barrier, not a slow start: lock-a's first cluster create takes effect, and its answer
    # waits for `release` — the apply holds its lock until the test says so.
    release = base / "release-create"
    SandboxStore(base / "cloud").arm_hold("after:clusters/create", release)

    def a_is_creating() -> bool:
        pending = any(c.get("state") == "PENDING" for c in SandboxStore(base / "cloud").list_clusters(workspace))
        reached = release.with_name(release.name + ".reached").exists()
        return reached and pending and pg.advisory_locks() > 0

    first = start(project, "apply", "--env", "lock-a", "--auto-approve")
    wait_until(a_is_creating, "the apply of lock-a to hold its lock while it creates a cluster")
    # Same environment: waits for the lock (the default 0s would fail at once).
    second = start(project, "apply", "--env", "lock-a", "--auto-approve", "--lock-timeout", "3m")
    # Another environment: --lock-timeout 0s, so any wait on lock-a's lock would be an error.
    other_code, other_out = finish(start(project, "plan", "--env", "lock-b", "--lock-timeout", "0s"))
    assert other_code == 2, other_out[-3000:]
    assert first.poll() is None, "lock-a's apply ended before lock-b planned: the test proved nothing"
    assert second.poll() is None, "the second apply of lock-a did not wait for the first's lock"
    release.touch()

    first_code, first_out = finish(first)
    second_code, second_out = finish(second)
    assert first_code == 0, first_out[-3000:]
    assert second_code == 0, second_out[-3000:]
    assert "no changes — nothing to apply" in second_out, "the second apply planned before the first had applied"
    assert "Apply complete" not in second_out
    assert pg.advisory_locks() == 0


def test_a_first_init_that_loses_the_race_for_terraforms_shared_sequence_is_run_again(
    tmp_path_factory: pytest.TempPathFactory, pg: PgServer
) -> None:
    """Two runners' first inits on a fresh database both create Terraform's one sequence for all
    schemas (`public.global_states_id_seq`); the later one fails on PostgreSQL's catalog. Here
    the test is the other runner: its transaction has created the sequence and not committed,
    so the plan's init is made to wait on it, and lose, at a moment the test chooses."""
    base = tmp_path_factory.mktemp("race")
    pg.query("CREATE DATABASE first_inits")
    fresh = dataclasses.replace(pg, database="first_inits")
    config = copy.deepcopy(BASE_CONFIG)
    config["terraform"]["backend"] = {"type": "pg"}
    project = runner_project(base, "runner", config, fresh, base / "cloud")

    with psycopg.connect(fresh.conn_str) as twin:  # not autocommit: the creation stays open
        twin.execute("CREATE SEQUENCE public.global_states_id_seq AS bigint")
        plan = start(project, "plan")

        def init_waits_on_the_twin() -> bool:
            waiting = fresh.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'CREATE SEQUENCE%%'"
            )
            return bool(waiting[0][0]) or plan.poll() is not None

        wait_until(init_waits_on_the_twin, "the plan's init to wait on the twin's uncommitted sequence")
        assert plan.poll() is None, finish(plan)[1][-3000:]
        twin.commit()

    code, out = finish(plan)
    assert code == 2, out[-3000:]
    assert "running init again" in out
    assert fresh.query(f"SELECT count(*) FROM {SCHEMA}.states WHERE name = 'default'") == [(1,)]


@pytest.fixture(autouse=True)
def _needs_terraform() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("needs terraform")
