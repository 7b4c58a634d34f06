"""The run's one clock (provisioner/clock.py): the fake the tests move time with, and that a run's
waits — the SDK's own retries included — read the run's clock, not the `time` module."""

from __future__ import annotations

import ast
import dataclasses
import threading
from pathlib import Path

from provisioner.clock import FakeClock, RealClock
from provisioner.run.context import RunContext
from tests.helpers.config import REPO
from tests.helpers.project import Project

# Modules that may still read the `time` module themselves, each for a reason of its own.
# Everything else that waits or measures takes the run's clock.
OWN_TIME = {
    "provisioner/clock.py": "the clock itself",
    "provisioner/reach/probe.py": "deadlines handed to the SDK's command-execution waits, which sleep in real time",
    "provisioner/operations/apply.py": "compared with a plan file's mtime: the filesystem's clock",
}


def test_fake_time_moves_only_when_someone_sleeps() -> None:
    clock = FakeClock(start=10.0, wall=1_000.0)
    assert (clock.monotonic(), clock.time()) == (10.0, 1_000.0)
    clock.sleep(2.5)
    clock.sleep(-1)  # a negative sleep is no sleep, as time.sleep refuses one
    assert (clock.monotonic(), clock.time()) == (12.5, 1_002.5)
    assert clock.sleeps == [2.5, 0.0]


def test_an_action_runs_when_time_reaches_it_and_followers_see_every_move() -> None:
    clock = FakeClock(start=0.0)
    seen: list[tuple[str, float]] = []
    moved: list[float] = []
    clock.at(5.0, lambda: seen.append(("barrier", clock.monotonic())))
    clock.at(0.0, lambda: seen.append(("due now", clock.monotonic())))
    clock.follow(moved.append)
    clock.sleep(3.0)
    assert seen == [("due now", 0.0)]
    clock.sleep(3.0)
    assert seen == [("due now", 0.0), ("barrier", 5.0)] and clock.monotonic() == 6.0
    assert moved == [3.0, 3.0]


def test_a_wait_ends_at_once_when_its_event_is_set_and_sleeps_otherwise() -> None:
    clock = FakeClock(start=0.0)
    stop = threading.Event()
    assert clock.wait(stop, 4.0) is False and clock.monotonic() == 4.0
    clock.at(6.0, stop.set)  # e.g. Ctrl-C during the next wait
    assert clock.wait(stop, 10.0) is True
    assert clock.wait(stop, 10.0) is True and clock.monotonic() == 14.0  # already set: no sleep


def test_real_clock_reads_the_time_module() -> None:
    clock = RealClock()
    before = clock.monotonic()
    assert not clock.wait(threading.Event(), 0)
    assert clock.monotonic() >= before and clock.time() > 1_700_000_000


def test_the_run_clock_is_what_the_workspace_client_and_the_sdks_retries_use(ctx: RunContext, project: Project) -> None:
    """One clock per run: the workspace client the run opens waits on it, and the SDK's own 429
    retries sleep on it (`Config(clock=…)`): two answers of 429 with `Retry-After: 30` cost a
    fake minute, not a real one."""
    clock = FakeClock()
    run = dataclasses.replace(ctx, clock=clock)
    (env,) = run.config.select()
    client = run.workspace_client(env)
    sdk_clock: object = client.sdk.config.clock  # the SDK types it as its own Clock; ours has its methods
    assert client.clock is clock and sdk_clock is clock
    store = project.store()
    store.set_faults(**{"workspace.status_429": 2, "workspace.retry_after": 30})
    began = clock.monotonic()

    assert client.list_clusters() == []

    assert [s for s in clock.sleeps if s >= 30] == clock.sleeps and len(clock.sleeps) == 2, clock.sleeps
    assert clock.monotonic() - began >= 60
    assert store.faults()["workspace.status_429"] == 0


def test_only_the_listed_modules_read_the_time_module_themselves() -> None:
    """Waits and deadlines take the run's clock; a module that reads `time` itself is listed above
    with its reason (a new one must be added there, or take the clock)."""
    readers = set()
    for path in sorted((REPO / "provisioner").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("provisioner/sandbox/"):
            continue  # the emulator keeps its own time (it stands alone)
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if "time" in names:
                readers.add(relative)
    assert readers == set(OWN_TIME), sorted(readers ^ set(OWN_TIME))
