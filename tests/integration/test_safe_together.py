"""Safe together (issue 21): two runs of one environment at once, and a `rotate` killed at each
phase — on the real CLI, real terraform, the sandbox, and (for "two runners") a real PostgreSQL
backend shared by two clones.

Every point is hit with a barrier, never a sleep: the sandbox's holds (`store.arm_hold`: the
emulator stops at a point — after AEP's refresh took effect, before or after a workspace call —
writes `<file>.reached` and waits until the test creates `<file>`), the sandbox's state, and the
lines a waiting run prints. Afterwards: exactly one refresh at AEP (the store's revoked tokens),
no cluster on a revoked token, and `status` names exactly one command, which recovers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.sandbox.store.base import now_ms
from tests.helpers.config import BASE_CONFIG, WORKSPACE_KEY
from tests.helpers.output import error_lines
from tests.helpers.pg import PgServer
from tests.helpers.processes import cmdline, descendants
from tests.helpers.project import Project, applied, cluster_ids, make_project, revocations, token
from tests.helpers.zygote import STARTED_PROVIDERS

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long

COMMAND_RE = re.compile(r"`(provision [^`]+)`")
LOCKED = "another run holds this environment's lock — "


@pytest.fixture(autouse=True)
def _needs_terraform() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("needs terraform")


# ---- running the CLI in the background, and barriers ----------------------------------------------


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        self.proc.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            self.proc.args, self.proc.returncode, self.out.read_text(), self.err.read_text()
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)


def start(project: Project, *args: str, tag: str = "run", **env: str) -> Run:
    out, err = project.dir / f"{tag}-{time.monotonic_ns()}.out", project.dir / f"{tag}-{time.monotonic_ns()}.err"
    argv = [sys.executable, "-m", "provisioner.main", *args, "--config", str(project.config_path), "--sandbox"]
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            argv,
            cwd=project.dir,
            env=project.env(**{**STARTED_PROVIDERS, **env}),
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
        )
    return Run(proc, out, err)


def wait_until(condition: Callable[[], bool], what: str, run: Run | None = None, timeout: float = 180) -> None:
    """Poll a barrier (a file, the sandbox's state, a line printed); fail if `run` ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if run is not None and run.proc.poll() is not None:
            done = run.finish()
            pytest.fail(f"the run ended before {what}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Barrier:
    def __init__(self, project: Project, point: str, *, skip: int = 0, client: str = "") -> None:
        self.file = project.dir / f"release-{point.replace(':', '-').replace('/', '-')}"
        self.reached_file = self.file.with_name(self.file.name + ".reached")
        project.store().arm_hold(point, self.file, skip=skip, client=client)

    def reached(self, run: Run) -> None:
        wait_until(self.reached_file.exists, f"the barrier {self.file.name}", run)

    def release(self) -> None:
        self.file.touch()


# ---- what must hold after every race and every kill ---------------------------------------------------


def assert_all_on_current_token(project: Project, ids: dict[str, str] | None = None) -> None:
    store = project.store()
    ids = ids or cluster_ids(project)
    assert ids
    running = {n: c for n, c in ids.items() if (store.get_cluster(WORKSPACE_KEY, c) or {}).get("state") == "RUNNING"}
    assert running == ids, f"not every cluster runs: {ids} vs {running}"
    stale = [n for n, c in ids.items() if not store.dlz_access(WORKSPACE_KEY, c)]
    assert not stale, f"on a revoked token: {stale}"
    assert len(store.list_clusters(WORKSPACE_KEY)) == len(ids), "a cluster outside the state"


def the_one_command(project: Project, **env: str) -> list[str]:
    """`status` after an interruption: drift (4), and exactly one command named, as argv."""
    done = project.run("status", env=project.env(**env))
    assert done.returncode == 4, done.stdout + done.stderr
    commands = set(COMMAND_RE.findall(done.stdout + done.stderr))
    assert len(commands) == 1, f"status advises {sorted(commands)}:\n{done.stdout}{done.stderr}"
    (command,) = commands
    assert command.startswith("provision rotate --resume --env default"), command
    assert "rewritten outside" not in done.stdout + done.stderr
    return [*command.split()[1:], "--auto-approve"]  # as a CI job runs it (a person answers the question)


def run_cli(project: Project, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner.main", *argv],
        cwd=project.dir,
        env=project.env(**{**STARTED_PROVIDERS, **env}),
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def restarted_once(project: Project, since_ms: int) -> bool:
    """Every cluster restarted exactly once since the rotation began (the killed run's and the
    recovery's restarts together): none left on the old token, none restarted twice."""
    store = project.store()
    counts = {
        cid: len(store.cluster_events(WORKSPACE_KEY, cid, event_types=frozenset({"RESTARTING"}), start_time=since_ms))
        for cid in cluster_ids(project).values()
    }
    assert set(counts.values()) == {1}, counts
    return True


@contextlib.contextmanager
def serving(project: Project) -> Iterator[None]:
    """The project's "cloud" as `provision sandbox serve` in a process of its own, which every
    later run attaches to (PROVISION_SANDBOX_SERVER): it outlives a killed run, as AEP and a
    real workspace do, so what the killed run's Terraform has in flight can finish."""
    argv = [sys.executable, "-m", "provisioner.main", "sandbox", "serve", "--config", str(project.config_path)]
    server = subprocess.Popen(
        argv,
        cwd=project.dir,
        env=project.env(**STARTED_PROVIDERS),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=(project.dir / "serve.err").open("w"),  # a killed client's broken request is reported there
        text=True,
    )
    assert server.stdout is not None
    url = next((line.split("=", 1)[1].split()[0] for line in server.stdout if line.startswith("share:")), None)
    assert url, "sandbox serve printed no URL"
    project.extra_env["PROVISION_SANDBOX_SERVER"] = url
    try:
        yield
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


@pytest.fixture
def steady(tmp_path: Path) -> Iterator[Project]:
    """An applied secret_scope project, served: two running clusters on AEP's current token."""
    project = make_project(tmp_path / "p")
    with serving(project):
        applied(project)
        assert_all_on_current_token(project)
        yield project


# ---- two runs at once on one machine (local backend: flock beside the state) -------------------------


@pytest.mark.parametrize(
    "second",
    [["rotate", "--auto-approve"], ["rotate", "--resume", "--auto-approve"], ["apply", "--auto-approve"]],
    ids=["rotate", "rotate-resume", "apply"],
)
def test_a_second_run_during_a_rotation_is_refused_in_one_line(steady: Project, second: list[str]) -> None:
    before = revocations(steady)
    barrier = Barrier(steady, "after:aep.refresh")  # the first run's refresh took effect; its answer waits
    first = start(steady, "rotate", "--auto-approve", tag="first")
    barrier.reached(first)

    refused = steady.run(*second)

    barrier.release()
    done = first.finish()
    assert done.returncode == 0, done.stderr
    assert refused.returncode == 1, refused.stderr
    (line,) = error_lines(refused)
    assert LOCKED in line and "`provision rotate` (host " in line and f"pid {first.pid})" in line, line
    assert "--lock-timeout" in line
    assert revocations(steady) == before + 1  # exactly one refresh
    assert_all_on_current_token(steady)


def test_a_second_rotation_that_waits_does_not_rotate_again(steady: Project) -> None:
    before = revocations(steady)
    barrier = Barrier(steady, "after:aep.refresh")
    first = start(steady, "rotate", "--auto-approve", tag="first")
    barrier.reached(first)
    waiter = start(steady, "rotate", "--auto-approve", "--lock-timeout", "5m", tag="waiter")
    wait_until(lambda: "waiting for `provision rotate`" in waiter.err.read_text(), "the waiter to wait", waiter)
    barrier.release()

    assert first.finish().returncode == 0
    waited = waiter.finish()
    assert waited.returncode == 0, waited.stderr
    assert "while this run waited for the lock — not rotating again" in waited.stderr
    assert revocations(steady) == before + 1
    assert_all_on_current_token(steady)


def test_a_run_killed_while_it_waits_for_the_lock_leaves_no_early_keeper_or_server(steady: Project) -> None:
    """`apply` starts Terraform's keeper and the stand-in's server while it loads, before it knows
    the Terraform command (provisioner/run/early.py). Killed -9 while it waits for the lock,
    before any Terraform run took them, it leaves neither: the keeper's stdin closes with it,
    and the keeper stops its server. (They start with an interpreter-only environment, so the
    environment marker of tests/security/test_kill.py would not find them: looked for by pid.)"""
    barrier = Barrier(steady, "after:aep.refresh")
    first = start(steady, "rotate", "--auto-approve", tag="first")
    barrier.reached(first)
    waiter = start(steady, "apply", "--auto-approve", "--lock-timeout", "5m", tag="waiter")
    wait_until(lambda: "waiting for `provision rotate`" in waiter.err.read_text(), "the waiter to wait", waiter)
    early = {pid: cmdline(pid) or "" for pid in descendants(waiter.proc.pid)}
    keeper = [pid for pid, line in early.items() if "--await-command" in line]
    server = [pid for pid, line in early.items() if line.endswith("--environ-on-stdin")]
    assert len(keeper) == 1 and len(server) == 1, early
    waiter.proc.kill()
    waiter.proc.wait()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in keeper + server), "both to exit")
    barrier.release()
    assert first.finish().returncode == 0
    assert_all_on_current_token(steady)


# ---- kill -9 of a rotation at each phase: status names one command, and it recovers ------------------


def _kill_at(project: Project, barrier: Barrier, *, then: Callable[[], None] | None = None) -> str:
    """Start `rotate`, wait for `barrier`, kill -9 it; the token it was about to revoke."""
    old = token(project)
    rotation = start(project, "rotate", "--auto-approve", tag="killed")
    barrier.reached(rotation)
    if then is not None:
        then()
    tree = descendants(rotation.pid)  # Terraform and its provider, when the kill comes during a command
    rotation.kill()
    barrier.release()  # nobody waits on it any more; a later run must not either
    # No process outlives the killed run (Terraform is told to stop, and stops).

    def left() -> list[int]:
        return [pid for pid in tree if _alive(pid)]

    try:
        wait_until(lambda: not left(), "every process of the killed run to end", timeout=60)
    except AssertionError:
        pytest.fail("left running: " + "; ".join(_cmdline(pid) for pid in left()))
    return old


def _cmdline(pid: int) -> str:
    return f"{pid} " + (cmdline(pid) or "(gone)")[:200]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _recover(project: Project, old: str, before: int, since_ms: int) -> None:
    argv = the_one_command(project)
    done = run_cli(project, argv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert token(project) != old and revocations(project) == before + 1  # the killed run's refresh, no other
    assert_all_on_current_token(project)
    assert restarted_once(project, since_ms)
    healthy = project.run("status")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr


def test_killed_after_the_refresh(steady: Project) -> None:
    before, since = revocations(steady), now_ms()
    old = _kill_at(steady, Barrier(steady, "after:aep.refresh"))
    assert revocations(steady) == before + 1
    _recover(steady, old, before, since)


def test_killed_after_the_secret_write(steady: Project) -> None:
    """The new value is in the scope, without its fingerprint; no cluster restarted yet."""
    before, since = revocations(steady), now_ms()
    old = _kill_at(steady, Barrier(steady, "before:clusters/restart"))
    _recover(steady, old, before, since)


def test_killed_during_the_restarts(steady: Project) -> None:
    """One cluster restarted on the new value, the other not: the recovery restarts only that one."""
    store = steady.store()
    started = {c["cluster_id"]: c.get("last_restarted_time") for c in store.list_clusters(WORKSPACE_KEY)}

    def one_restarted() -> None:
        def check() -> bool:
            now = {c["cluster_id"]: c.get("last_restarted_time") for c in steady.store().list_clusters(WORKSPACE_KEY)}
            return bool(sum(now[c] != started[c] for c in started) == 1)

        wait_until(check, "the first restart to take effect")

    before, since = revocations(steady), now_ms()
    old = _kill_at(steady, Barrier(steady, "before:clusters/restart", skip=1), then=one_restarted)
    _recover(steady, old, before, since)


def test_killed_during_reconciliation(steady: Project) -> None:
    """The rotation converged; its closing `terraform apply -refresh-only` dies with it: nothing to recover."""
    before = revocations(steady)
    barrier = Barrier(steady, "before:clusters/get", client="databricks-tf-provider")
    _kill_at(steady, barrier)
    assert revocations(steady) == before + 1
    assert_all_on_current_token(steady)
    status = steady.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert not COMMAND_RE.findall(status.stdout + status.stderr)
    plan = steady.run("plan")  # Terraform's state lock was let go too
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_plain_rotate_after_a_killed_one_finishes_it_without_a_refresh(steady: Project) -> None:
    before = revocations(steady)
    old = _kill_at(steady, Barrier(steady, "before:clusters/restart"))
    done = steady.run("rotate", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "finishing it (no new refresh)" in done.stderr
    assert token(steady) != old and revocations(steady) == before + 1
    assert_all_on_current_token(steady)


# ---- two runners: two clones sharing one PostgreSQL backend and one "cloud" ---------------------------


@pytest.fixture
def runners(tmp_path: Path, pg: PgServer) -> Iterator[tuple[Project, Project]]:
    """Two checkouts of one repository (own roots, HOME, caches) on one sandbox and one pg backend."""
    schema = f"dlz_runners_{os.getpid()}_{time.monotonic_ns() % 100000}"
    config = copy.deepcopy(BASE_CONFIG)
    config["terraform"]["backend"] = {"type": "pg", "schema_name": schema}
    shared = tmp_path / "cloud"
    shared.mkdir()
    clones = []
    for name in ("runner-a", "runner-b"):
        clone = make_project(tmp_path / name)
        clone.extra_env["PG_CONN_STR"] = pg.conn_str
        # One "cloud" (AEP and the workspace): both checkouts' sandbox directory is the same one.
        clone.sandbox_dir.parent.mkdir(parents=True)
        clone.sandbox_dir.symlink_to(shared)
        clone.write_config(copy.deepcopy(config))
        clones.append(clone)
    a, b = clones
    with serving(a):
        b.extra_env["PROVISION_SANDBOX_SERVER"] = a.extra_env["PROVISION_SANDBOX_SERVER"]
        done = a.run("apply", "--auto-approve")
        assert done.returncode == 0, done.stderr
        assert b.run("render").returncode == 0  # the roots are committed: a clone has them
        yield a, b


def _pg_ids(project: Project, pg: PgServer) -> dict[str, str]:
    from provisioner.terraform import TerraformState

    schema = project.config["terraform"]["backend"]["schema_name"]
    (row,) = pg.query(f"SELECT data FROM {schema}.states WHERE name = 'default'")
    return TerraformState(json.loads(row[0])).clusters()


def test_two_runners_rotate_at_once_one_refreshes(runners: tuple[Project, Project], pg: PgServer) -> None:
    a, b = runners
    before = revocations(a)
    barrier = Barrier(a, "after:aep.refresh")
    first = start(a, "rotate", "--auto-approve", tag="a")
    barrier.reached(first)

    refused = b.run("rotate", "--auto-approve")

    barrier.release()
    assert first.finish().returncode == 0
    assert refused.returncode == 1, refused.stderr
    (line,) = error_lines(refused)
    assert LOCKED in line and f"pid {first.pid})" in line and "advisory lock on the pg backend" in line, line
    assert revocations(a) == before + 1
    assert_all_on_current_token(a, _pg_ids(a, pg))
    assert b.run("status").returncode == 0  # the other runner sees a healthy environment


def test_a_rotation_killed_on_one_runner_is_finished_by_the_other(
    runners: tuple[Project, Project], pg: PgServer
) -> None:
    a, b = runners
    before = revocations(a)
    old = _kill_at(a, Barrier(a, "before:clusters/restart"))
    # Runner b never saw runner a's disk: the journal and the lock live in the backend.
    argv = the_one_command(b)
    done = run_cli(b, argv)
    assert done.returncode == 0, done.stdout + done.stderr  # a's lock died with its connection: taken over
    assert token(b) != old and revocations(b) == before + 1
    assert_all_on_current_token(b, _pg_ids(b, pg))
    assert pg.advisory_locks() == 0
