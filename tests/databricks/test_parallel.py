"""map_bounded: input order, every error kept, bounded in-flight calls, nothing secret in errors;
CallBound: restarts before reads.

The calls are real workspace calls against the sandbox emulator, so ordering is exercised
with answers that really arrive out of order (the emulator's realistic latency is random).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.clock import FakeClock
from provisioner.databricks.parallel import CallBound, map_bounded, poll_all, values_or_raise
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError
from provisioner.errors import ProvisionError
from provisioner.sandbox import Sandbox
from provisioner.secret import Secret
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import sandbox_pat, sandbox_workspace

SPEC = {"cluster_name": "c", "spark_version": "15.4.x-scala2.12", "num_workers": 0}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path, workspace_hosts=[WORKSPACE_HOST]) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[WorkspaceClient]:
    with sandbox_workspace(sandbox, WORKSPACE_HOST) as c:
        yield c


def test_outcomes_come_back_in_input_order_whatever_order_the_answers_arrive() -> None:
    # The first items take longest, so completion order is the reverse of input order.
    items = list(range(12))

    def slow_first(i: int) -> int:
        time.sleep(0.002 * (len(items) - i))
        return i * i

    outcomes = map_bounded(slow_first, items, max_parallel=6)
    assert [o.item for o in outcomes] == items
    assert [o.value for o in outcomes] == [i * i for i in items]
    assert values_or_raise(outcomes, str, "square") == [i * i for i in items]


def test_in_flight_calls_never_exceed_the_bound() -> None:
    lock = threading.Lock()
    in_flight, peak = 0, 0

    def call(_: int) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.01)
        with lock:
            in_flight -= 1

    map_bounded(call, range(40), max_parallel=5)
    assert 1 < peak <= 5
    peak = 0
    map_bounded(call, range(5), max_parallel=1)
    assert peak == 1


def test_one_clusters_error_does_not_lose_the_others(sandbox: Sandbox, client: WorkspaceClient) -> None:
    ids = [sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(6)]
    ids.insert(3, "0000-000000-missing0")  # permanently deleted / never existed
    outcomes = map_bounded(client.get_cluster, ids, max_parallel=4)
    assert [o.item for o in outcomes] == ids
    good = [o for o in outcomes if o.ok]
    assert [o.value["cluster_id"] for o in good if o.value] == [i for i in ids if "missing" not in i]
    (bad,) = [o for o in outcomes if not o.ok]
    assert isinstance(bad.error, WorkspaceError) and bad.error.not_found
    with pytest.raises(
        ProvisionError, match=r"read clusters failed for 1 of 7: 0000-000000-missing0: .*does not exist"
    ):
        values_or_raise(outcomes, str, "read clusters")


def test_every_failure_is_named_and_no_secret_leaks_from_a_concurrent_error(
    sandbox: Sandbox, client: WorkspaceClient
) -> None:
    sas = Secret("sv=2020-10-02&si=dlz-x&sr=c&sp=racwdlm&sig=AbC%2FdEf%2BgHi%3D")
    pat = sandbox_pat(sandbox)
    # Two TERMINATED clusters: restarting them is a 400 INVALID_STATE (not retried).
    states = ["RUNNING", "TERMINATED", "RUNNING", "TERMINATED", "RUNNING"]
    ids = [sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}, state=s) for i, s in enumerate(states)]

    def restart_or_complain(cid: str) -> str:
        if cid == ids[4]:
            # A bug that quotes what it holds: the message must still come out masked.
            raise RuntimeError(f"cannot use token {sas.reveal()} with {pat} (proxy saw sig=Zz9%2Fq%3D)")
        client.restart_cluster(cid)
        return cid

    outcomes = map_bounded(restart_or_complain, ids, max_parallel=5)
    assert [o.ok for o in outcomes] == [True, False, True, False, False]
    with pytest.raises(ProvisionError) as err:
        values_or_raise(outcomes, lambda cid: f"cluster {cid}", "restart")
    text = str(err.value)
    assert "failed for 3 of 5" in text and f"cluster {ids[4]}" in text and "INVALID_STATE" in text
    assert "sig=***" in text
    for secret in (sas.reveal(), "AbC%2FdEf%2BgHi%3D", pat, "Zz9%2Fq%3D"):
        assert secret not in text
        assert all(secret not in repr(o) for o in outcomes)


def test_an_empty_input_makes_no_call() -> None:
    def never(_: Any) -> None:
        raise AssertionError("called")

    assert map_bounded(never, [], max_parallel=8) == []


# ---- poll_all: many waits sharing one request budget --------------------------------------


def test_poll_all_probes_each_item_until_done_and_keeps_input_order() -> None:
    needed = {"a": 3, "b": 1, "c": 5, "d": 2}
    probes: dict[str, int] = dict.fromkeys(needed, 0)
    lock = threading.Lock()

    def probe(name: str) -> str | None:
        with lock:
            probes[name] += 1
            return f"{name} after {probes[name]}" if probes[name] >= needed[name] else None

    outcomes = poll_all(probe, list(needed), max_parallel=3, rate=1000, min_interval=0)
    assert [o.item for o in outcomes] == list(needed)
    assert [o.value for o in outcomes] == [f"{n} after {k}" for n, k in needed.items()]
    assert probes == needed  # never probed again once done


def test_poll_all_probes_the_longest_waiting_item_first() -> None:
    order: list[int] = []

    def probe(i: int) -> int | None:
        order.append(i)
        return i if len(order) > 9 else None

    poll_all(probe, [0, 1, 2], max_parallel=1, rate=1000, min_interval=0)
    # Round robin over what is pending: nobody is probed twice before the others once.
    assert order[:9] == [0, 1, 2] * 3


def test_poll_all_keeps_one_items_error_and_finishes_the_others() -> None:
    def probe(i: int) -> int | None:
        if i == 1:
            raise WorkspaceError(500, "INTERNAL_ERROR", "GET /api/2.1/clusters/get: boom")
        return i

    outcomes = poll_all(probe, [0, 1, 2], rate=1000, min_interval=0)
    assert [o.value for o in outcomes] == [0, None, 2]
    assert isinstance(outcomes[1].error, WorkspaceError)


def test_poll_all_stops_when_asked_and_says_which_did_not_finish() -> None:
    stop = threading.Event()

    def probe(i: int) -> int | None:
        if i == 0:
            return 0
        stop.set()  # e.g. Ctrl-C or a deadline seen by the caller
        return None

    outcomes = poll_all(probe, [0, 1, 2], max_parallel=1, rate=1000, min_interval=0, stop=stop)
    assert outcomes[0].value == 0
    assert all(isinstance(o.error, InterruptedError) for o in outcomes[1:])


def test_poll_all_shares_one_request_budget_on_the_run_clock() -> None:
    """Every probe takes a token of one budget: at 2/s (a second's worth at once) twelve probes,
    four for each of three items, come two at once and then one every 0.5 s — in fake time."""
    clock = FakeClock(start=0.0)
    at: list[float] = []
    counts: dict[int, int] = {}

    def probe(i: int) -> int | None:
        at.append(clock.monotonic())
        counts[i] = counts.get(i, 0) + 1
        return i if counts[i] == 4 else None

    outcomes = poll_all(probe, [0, 1, 2], max_parallel=1, rate=2, clock=clock)
    assert [o.value for o in outcomes] == [0, 1, 2]
    assert at == pytest.approx([0.0, 0.0] + [0.5 * k for k in range(1, 11)])


def test_poll_all_waits_for_real_restarts(sandbox: Sandbox, client: WorkspaceClient) -> None:
    ids = [sandbox.store.add_cluster(WORKSPACE_KEY, {"cluster_name": f"c{i}"}) for i in range(6)]
    for cid in ids:
        client.restart_cluster(cid)

    def running(cid: str) -> dict[str, Any] | None:
        info = client.get_cluster(cid)
        return info if info["state"] == "RUNNING" else None

    outcomes = poll_all(running, ids, max_parallel=4)
    assert [o.value["cluster_id"] for o in outcomes if o.value] == ids


def test_call_bound_lets_no_read_start_before_the_announced_restarts_are_answered() -> None:
    """`CallBound`: a read waits while a restart is announced, even one whose thread has not
    asked yet, and until that restart has been answered; `cancel` (a run stopping) frees it."""
    bound = CallBound(2)
    bound.expect(2)
    events: list[str] = []
    read_done = threading.Event()

    def read() -> None:
        with bound.call():
            events.append("read")
        read_done.set()

    reader = threading.Thread(target=read)
    reader.start()
    with bound.restart():
        events.append("restart 1")
    assert not read_done.wait(0.2), events  # one announced restart is still to come
    with bound.restart():
        events.append("restart 2")
        assert not read_done.wait(0.2), events  # issued, not yet answered
    reader.join(10)
    assert events == ["restart 1", "restart 2", "read"]

    stopping = CallBound(1)
    stopping.expect(1)  # a restart that will never come (its wait did not start)

    def read_while_stopping() -> None:
        with stopping.call():
            pass

    waiting = threading.Thread(target=read_while_stopping)
    waiting.start()
    stopping.cancel()
    waiting.join(10)
    assert not waiting.is_alive()
