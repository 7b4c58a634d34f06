"""A fresh token is refused until its stored access policy takes effect ("may take up to 30
seconds", Azure REST Set Container ACL; issue 22, item 7): the sandbox's blob route models the
delay (a profile knob), and the host check asks again within a bounded budget instead of
calling the token revoked. Time moves through the run's clock (a `FakeClock`): sleeping ages
the token in the store by as much, so nothing here waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.clock import FakeClock
from provisioner.reach.host_check import OK, REVOKED, SETTLE_SECONDS, check_from_host, check_until_settled
from provisioner.sandbox import Sandbox
from provisioner.sandbox.profile import FAST, REALISTIC, SAS_PROPAGATION_ENV, current_profile
from tests.helpers.sandbox import EMULATOR_ORG_ID, credentials


@pytest.fixture
def sandbox(tmp_path: Path, dlz_backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv(SAS_PROPAGATION_ENV, "30")
    with Sandbox(tmp_path / "sandbox", dlz_backend=dlz_backend) as sb:
        yield sb


def aging_clock(sandbox: Sandbox) -> FakeClock:
    """A clock whose sleep makes the store's DLZ tokens that much older."""

    def age(seconds: float) -> None:
        with sandbox.store._txn() as state:
            for record in state["dlz"].values():
                record["issued_at"] = int(record["issued_at"]) - int(seconds * 1000)

    clock = FakeClock()
    clock.follow(age)
    return clock


def test_the_profiles_set_the_delay() -> None:
    assert FAST.sas_propagation_seconds == 0 and REALISTIC.sas_propagation_seconds > 0
    assert current_profile({SAS_PROPAGATION_ENV: "12"}).sas_propagation_seconds == 12


def test_a_fresh_token_is_refused_then_accepted_within_the_budget(sandbox: Sandbox) -> None:
    body = sandbox.store.refresh_dlz(EMULATOR_ORG_ID, "prod")
    creds = credentials(body)
    assert check_from_host(creds, routing=sandbox.blob_hosts()).cause == REVOKED  # not yet in effect

    aging = aging_clock(sandbox)
    settled = check_until_settled(creds, routing=sandbox.blob_hosts(), clock=aging)
    assert settled.ok and settled.cause == OK, settled
    # Asked again until it took effect (real time passes too: Azurite's answers take a while).
    assert aging.sleeps and sum(aging.sleeps) <= SETTLE_SECONDS


def test_a_revoked_token_is_still_called_revoked_once_the_budget_is_spent(sandbox: Sandbox) -> None:
    old = credentials(sandbox.store.dlz_credentials(EMULATOR_ORG_ID, "prod"))
    sandbox.store.refresh_dlz(EMULATOR_ORG_ID, "prod")  # the old token is revoked for good
    aging = aging_clock(sandbox)
    result = check_until_settled(old, routing=sandbox.blob_hosts(), clock=aging)
    assert result.cause == REVOKED and "still refused after 35 s" in result.detail
    assert "rotate --resume" in result.detail
    assert sum(aging.sleeps) == pytest.approx(SETTLE_SECONDS)
