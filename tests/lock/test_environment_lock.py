"""The environment lock on each backend: one holder at a time, a refusal naming the holder,
waiting on an injected clock, and a holder that died never blocking the next run.

Real components: the kernel's flock (local), a real PostgreSQL server (pg: tests/helpers/pg.py),
Azurite's blob leases (azurerm)."""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisioner.clock import FakeClock, RealClock
from provisioner.lock.environment import LockBusy, holding, seconds
from provisioner.lock.holder import Holder
from provisioner.lock.local import LocalLock
from provisioner.lock.store import LockStore
from tests.helpers.config import REPO
from tests.helpers.pg import PgServer

# Tens of seconds on one worker: scheduled before the short files, not as the run's tail
# (tests/conftest.py).
pytestmark = pytest.mark.long


def holder(command: str = "rotate", **environ: str) -> Holder:
    return Holder.this_run(command, environ, now=dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC))


# ---- the contract every backend keeps ---------------------------------------------------------


def check_one_holder_at_a_time(first: LockStore, second: LockStore) -> None:
    ci = holder("rotate", GITHUB_RUN_ID="987654")
    assert first.try_acquire(ci)
    assert not second.try_acquire(holder("apply"))
    seen = second.holder()
    assert seen is not None and seen.run_id == ci.run_id
    assert seen.ci_run == "GitHub Actions run 987654" and seen.command == "rotate" and seen.pid == os.getpid()
    with pytest.raises(LockBusy) as refused, holding(second, "dev", holder("apply"), timeout=0, clock=FakeClock()):
        raise AssertionError("the second run got the lock")
    (line,) = str(refused.value).splitlines()
    assert line.startswith("dev: another run holds this environment's lock — `provision rotate` (GitHub Actions run")
    assert "since 2026-12-07T03:00:00+00:00" in line and "--lock-timeout" in line
    first.release()
    assert second.try_acquire(holder("apply"))
    second.release()


def check_records_beside_the_lock(store: LockStore, reader: LockStore) -> None:
    assert reader.read_record("rotation") is None
    assert store.try_acquire(holder())
    store.write_record("rotation", {"phase": "refreshed", "expiry_date": "2027-01-01"})
    assert reader.read_record("rotation") == {"phase": "refreshed", "expiry_date": "2027-01-01"}
    store.release()
    assert reader.read_record("rotation") == {"phase": "refreshed", "expiry_date": "2027-01-01"}  # durable
    store.delete_record("rotation")
    assert reader.read_record("rotation") is None


# ---- local: flock beside the state -------------------------------------------------------------


def test_local_lock_one_holder_at_a_time(tmp_path: Path) -> None:
    state = tmp_path / "terraform" / "dev" / "terraform.tfstate"
    first, second = LocalLock(state), LocalLock(state)
    assert first.try_acquire(holder())
    assert (state.parent / "terraform.tfstate.dlz-lock").exists()  # beside the state, not the state itself
    assert not state.exists()
    first.release()
    # A command that rendered nothing leaves nothing behind, not even the root's directory.
    assert not (tmp_path / "terraform").exists()
    check_one_holder_at_a_time(first, second)


def test_local_lock_survives_its_file_being_removed_by_the_holder(tmp_path: Path) -> None:
    """The holder removes the file on release: a lock someone took on the removed file (opened
    before the release) is no lock at the path — the next run locks a new file, and then holds it."""
    state = tmp_path / "terraform.tfstate"
    first, second, third = LocalLock(state), LocalLock(state), LocalLock(state)
    assert first.try_acquire(holder())
    with open(first.path, "a+", encoding="utf-8") as late:  # opened before the release...
        first.release()
        fcntl.flock(late.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # ...and locked after it: the removed file
        assert second.try_acquire(holder())
        assert not third.try_acquire(holder())
    second.release()


def test_local_records_beside_the_state(tmp_path: Path) -> None:
    state = tmp_path / "terraform.tfstate"
    check_records_beside_the_lock(LocalLock(state), LocalLock(state))


def test_waiting_takes_the_lock_once_the_holder_lets_go(tmp_path: Path) -> None:
    first, second = LocalLock(tmp_path / "s.tfstate"), LocalLock(tmp_path / "s.tfstate")
    other = holder("apply")
    assert first.try_acquire(other)
    clock = FakeClock()
    clock.follow(lambda _: first.release() if len(clock.sleeps) == 3 else None)  # the holder lets go at the 3rd poll
    said: list[str] = []
    with holding(second, "dev", holder(), timeout=60, clock=clock, on_wait=said.append) as waited_for:
        assert waited_for is not None and waited_for.run_id == other.run_id
        assert not LocalLock(tmp_path / "s.tfstate").try_acquire(holder())  # held now
    assert len(clock.sleeps) == 3 and len(said) == 1 and "waiting for `provision apply`" in said[0]
    assert LocalLock(tmp_path / "s.tfstate").try_acquire(holder())  # and released after the block


def test_waiting_gives_up_at_the_timeout(tmp_path: Path) -> None:
    first, second = LocalLock(tmp_path / "s.tfstate"), LocalLock(tmp_path / "s.tfstate")
    assert first.try_acquire(holder("destroy"))
    clock = FakeClock()
    began = clock.monotonic()
    with (
        pytest.raises(LockBusy, match=r"refused after waiting 90s"),
        holding(second, "dev", holder(), timeout=seconds("1m30s"), clock=clock),
    ):
        raise AssertionError("got the lock")
    assert clock.monotonic() - began == pytest.approx(90.0)


def test_lock_timeout_durations() -> None:
    assert seconds("0s") == 0 and seconds("90s") == 90 and seconds("5m") == 300 and seconds("1m30s") == 90
    assert seconds("500ms") == 0.5 and seconds("1h") == 3600


HOLD_AND_WAIT = textwrap.dedent(
    """
    import sys, pathlib
    from provisioner.lock.holder import Holder
    from provisioner.lock.local import LocalLock
    lock = LocalLock(pathlib.Path(sys.argv[1]))
    assert lock.try_acquire(Holder.this_run("rotate", {}))
    pathlib.Path(sys.argv[2]).touch()
    sys.stdin.read()  # until killed
    """
)


def test_local_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    state, ready = tmp_path / "terraform.tfstate", tmp_path / "holding"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(state), str(ready)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for_file(ready, proc)
        assert not LocalLock(state).try_acquire(holder())
        seen = LocalLock(state).holder()
        assert seen is not None and seen.pid == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with holding(LocalLock(state), "dev", holder(), timeout=0, clock=FakeClock()) as waited_for:
        assert waited_for is None  # free at once: no wait, no expiry


def wait_for_file(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """A barrier: the child says it holds the lock by creating `path` (bounded by the test timeout)."""
    import time

    while not path.exists():
        assert proc.poll() is None, "the holder died before taking the lock"
        time.sleep(0.01)


# ---- pg: an advisory lock in the backend's database ----------------------------------------------


@pytest.fixture(scope="module")
def pg_conn_str(pg: PgServer) -> str:
    return pg.conn_str


def test_pg_lock_one_holder_at_a_time(pg_conn_str: str) -> None:
    from provisioner.lock.pg import PgLock

    check_one_holder_at_a_time(PgLock(pg_conn_str, "dlz_dev"), PgLock(pg_conn_str, "dlz_dev"))
    a, b = PgLock(pg_conn_str, "dlz_dev"), PgLock(pg_conn_str, "dlz_prod")
    assert a.try_acquire(holder()) and b.try_acquire(holder())  # environments never block each other
    a.release()
    b.release()


def test_pg_lock_never_collides_with_terraforms_state_lock(pg_conn_str: str) -> None:
    """Terraform's pg backend locks `pg_try_advisory_lock(<states.id>)` and `(-1)` (one bigint)."""
    import psycopg

    from provisioner.lock.pg import TOOL_KEY, PgLock, _int4

    with psycopg.connect(pg_conn_str, autocommit=True) as terraform:
        # What Terraform would hold: the bigint keys our two integers would make if the spaces met.
        for key in (-1, 1, 2, (TOOL_KEY << 32) | (_int4("dlz_dev") & 0xFFFFFFFF)):
            assert terraform.execute("SELECT pg_try_advisory_lock(%s::bigint)", (key,)).fetchone() == (True,)
        ours = PgLock(pg_conn_str, "dlz_dev")
        assert ours.try_acquire(holder())
        ours.release()


def test_pg_records_beside_the_state(pg_conn_str: str) -> None:
    from provisioner.lock.pg import PgLock

    check_records_beside_the_lock(PgLock(pg_conn_str, "dlz_records"), PgLock(pg_conn_str, "dlz_records"))


PG_HOLD_AND_WAIT = textwrap.dedent(
    """
    import sys, pathlib
    from provisioner.lock.holder import Holder
    from provisioner.lock.pg import PgLock
    lock = PgLock(sys.argv[1], "dlz_killed")
    assert lock.try_acquire(Holder.this_run("rotate", {"BUILD_BUILDID": "4242"}))
    pathlib.Path(sys.argv[2]).touch()
    sys.stdin.read()  # until killed
    """
)


def test_pg_lock_of_a_killed_holder_is_taken_over(pg_conn_str: str, tmp_path: Path) -> None:
    from provisioner.lock.pg import PgLock

    ready = tmp_path / "holding"
    proc = subprocess.Popen(
        [sys.executable, "-c", PG_HOLD_AND_WAIT, pg_conn_str, str(ready)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for_file(ready, proc)
        with (
            pytest.raises(LockBusy, match=r"Azure Pipelines build 4242"),
            holding(PgLock(pg_conn_str, "dlz_killed"), "dev", holder(), timeout=0, clock=FakeClock()),
        ):
            raise AssertionError("got the lock")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The server notices the closed connection; poll on the injected clock until it has.
    with holding(PgLock(pg_conn_str, "dlz_killed"), "dev", holder(), timeout=60, clock=RealPoll()):
        pass


class RealPoll(FakeClock):
    """Counts time in polls but really yields between them (the server drops the lock asynchronously)."""

    def sleep(self, seconds: float) -> None:
        import time

        super().sleep(seconds)
        time.sleep(0.05)


# ---- azurerm: a lease on a blob beside the state blob (Azurite) -------------------------------


@pytest.fixture(scope="module")
def azurite_container() -> Iterator[Callable[[], object]]:
    from azure.storage.blob import ContainerClient

    from provisioner.sandbox.azurite import AzuriteProcess
    from tests.helpers.sandbox import require_azurite

    key = base64.b64encode(b"k" * 32).decode()
    proc = AzuriteProcess(require_azurite())
    proc.start({"tfstate": key})
    conn = f"DefaultEndpointsProtocol=http;AccountName=tfstate;AccountKey={key};BlobEndpoint={proc.base_url}/tfstate;"
    ContainerClient.from_connection_string(conn, "states").create_container()
    try:
        yield lambda: ContainerClient.from_connection_string(conn, "states")
    finally:
        proc.stop()


def test_azurerm_lease_one_holder_at_a_time(azurite_container: Callable[[], object]) -> None:
    from provisioner.lock.azurerm import BlobLeaseLock

    key = "dlz-provisioner/dev.tfstate"
    first, second = BlobLeaseLock(azurite_container(), key), BlobLeaseLock(azurite_container(), key)  # type: ignore[arg-type]
    check_one_holder_at_a_time(first, second)


def test_azurerm_records_beside_the_state_blob(azurite_container: Callable[[], object]) -> None:
    from provisioner.lock.azurerm import BlobLeaseLock

    key = "dlz-provisioner/records.tfstate"
    check_records_beside_the_lock(
        BlobLeaseLock(azurite_container(), key),  # type: ignore[arg-type]
        BlobLeaseLock(azurite_container(), key),  # type: ignore[arg-type]
    )


def test_azurerm_lease_of_a_dead_holder_expires(azurite_container: Callable[[], object]) -> None:
    """A holder that stops renewing (it died) loses the lease after its duration, not before."""
    from provisioner.lock.azurerm import BlobLeaseLock

    key = "dlz-provisioner/dead.tfstate"
    dead = BlobLeaseLock(azurite_container(), key, lease_seconds=15)  # type: ignore[arg-type]
    assert dead.try_acquire(holder())
    dead._stop.set()  # as if the process died: nobody renews, nobody releases
    taker = BlobLeaseLock(azurite_container(), key, lease_seconds=15)  # type: ignore[arg-type]
    assert not taker.try_acquire(holder("apply"))
    # Real time: Azurite's lease clock is real (about 15 s here).
    with holding(taker, "dev", holder("apply"), timeout=60, clock=RealClock()) as waited_for:
        assert waited_for is not None and waited_for.command == "rotate"


def test_azurerm_lease_is_renewed_while_held(azurite_container: Callable[[], object]) -> None:
    from provisioner.lock.azurerm import BlobLeaseLock

    key = "dlz-provisioner/renewed.tfstate"
    held = BlobLeaseLock(azurite_container(), key, lease_seconds=15)  # type: ignore[arg-type]
    assert held.try_acquire(holder())
    other = BlobLeaseLock(azurite_container(), key, lease_seconds=15)  # type: ignore[arg-type]
    # Polls for longer than one lease: a renewed lease is never free.
    with pytest.raises(LockBusy), holding(other, "dev", holder("apply"), timeout=17, clock=RealClock()):
        raise AssertionError("got a renewed lease")
    held.release()
