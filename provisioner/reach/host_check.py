"""From this host: list the DLZ container with AEP's current SAS token, through the Azure SDK.

`azure-storage-blob`'s `ContainerClient` gets the container URL built from
`storageAccountName`/`containerName` and the token verbatim as its credential (the SDK
appends it to the query). A listing proves the token is live and allows `l`. A failure is
turned into one line naming the likely cause. Azure answers a revoked, altered or expired
SAS alike (403 `AuthenticationFailed`; Azurite says `AuthorizationFailure`), so the cause is
read from what else is known: AEP's expiry date, the service's `Date` header against this
host's clock, the error code, the detail text.

The SDK's error messages and exceptions can carry the request URL — with the token in
its query — so only our own words and the service's masked first line are ever shown.

A token fresh from a refresh is bound to a stored access policy that "may take up to 30
seconds to take effect" (Azure REST, Set Container ACL), and until then Azure refuses it
exactly as a revoked one. So `check_until_settled` asks again, backing off, for up to
`SETTLE_SECONDS` before it calls a token revoked (and advises `rotate --resume`); it waits on
the run's clock (provisioner/clock.py), so tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from provisioner.clock import Clock, RealClock
from provisioner.reach.endpoint import blob_host, container_url
from provisioner.secret import mask, mask_sas

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials

# Azure tolerates 15 minutes of clock difference on signed requests.
CLOCK_SKEW_LIMIT = dt.timedelta(minutes=15)
# A stored access policy takes effect within 30 s (Azure REST, Set Container ACL); a margin on top.
SETTLE_SECONDS = 35.0

OK, REVOKED, EXPIRED, CLOCK_SKEW, WRONG_ACCOUNT, NO_LIST_PERMISSION, UNREACHABLE, ERROR = (
    "ok",
    "revoked",
    "expired",
    "clock_skew",
    "wrong_account",
    "no_list_permission",
    "unreachable",
    "error",
)


@dataclass(frozen=True)
class HostCheck:
    ok: bool
    cause: str  # one of the constants above
    detail: str  # one masked line

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "cause": self.cause, "detail": self.detail}


def check_until_settled(
    creds: DlzCredentials,
    *,
    routing: Mapping[str, str] | None = None,
    budget: float = SETTLE_SECONDS,
    clock: Clock | None = None,
    check: Callable[..., HostCheck] | None = None,
) -> HostCheck:
    """`check_from_host`, asked again while the token is refused as revoked, for up to `budget` seconds."""
    clock = clock or RealClock()
    check = check or check_from_host
    started = clock.monotonic()
    wait = 1.0
    while True:
        result = check(creds, routing=routing)
        if result.cause != REVOKED:
            return result
        left = budget - (clock.monotonic() - started)
        if left <= 0:
            return HostCheck(
                False,
                REVOKED,
                f"{result.detail} (still refused after {budget:.0f} s, longer than a new stored access policy "
                "takes to take effect)",
            )
        clock.sleep(min(wait, left))
        wait = min(wait * 2, 8.0)


def check_from_host(
    creds: DlzCredentials,
    *,
    routing: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    now: dt.datetime | None = None,
) -> HostCheck:
    """`routing`: the run's `Target.blob_routing()` (where storage hosts are served)."""
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.storage.blob import ContainerClient

    account, container = creds.storage_account_name, creds.container_name
    client = ContainerClient.from_container_url(
        container_url(account, container, routing),
        credential=creds.sas_token.reveal(),
        retry_total=1,
        connection_timeout=min(10.0, timeout),
        read_timeout=timeout,
    )
    try:
        next(iter(client.list_blobs(results_per_page=1).by_page()), None)
    except HttpResponseError as exc:
        return _diagnose(exc, creds, now or dt.datetime.now(dt.UTC))
    except AzureError as exc:
        return HostCheck(
            False,
            UNREACHABLE,
            f"cannot reach {blob_host(account)} ({type(exc).__name__}) — "
            "is the storage account name right, and is the network path to Azure Storage open?",
        )
    finally:
        client.close()
    return HostCheck(True, OK, f"listed container {container} in {account} with AEP's current token")


def _diagnose(exc: Any, creds: DlzCredentials, now: dt.datetime) -> HostCheck:
    status = int(getattr(exc, "status_code", 0) or 0)
    raw_code = getattr(exc, "error_code", None) or _header(exc, "x-ms-error-code") or "error"
    code = str(getattr(raw_code, "value", raw_code))  # the SDK's StorageErrorCode enum, or a plain str
    first = _first_line(str(getattr(exc, "message", "") or exc))
    account, container = creds.storage_account_name, creds.container_name
    head = f"{status} {code}"
    if status == 404:
        return HostCheck(
            False,
            WRONG_ACCOUNT,
            f"{head}: no container {container} in storage account {account} — wrong account or container "
            "(check storageAccountName/containerName from `provision credentials`)",
        )
    if status != 403:
        return HostCheck(False, ERROR, f"{head}: {first}")
    if code == "AuthorizationPermissionMismatch":
        return HostCheck(False, NO_LIST_PERMISSION, f"{head}: the token does not allow listing (its `sp` lacks `l`)")
    detail = str(getattr(exc, "message", "") or "").lower()
    if creds.expiry_date < now.date() or "time frame" in detail or "expir" in detail:
        return HostCheck(
            False,
            EXPIRED,
            f"{head}: the token expired (AEP's expiryDate {creds.expiry_date.isoformat()}) — run `provision rotate`",
        )
    skew = _clock_skew(exc, now)
    if skew is not None and abs(skew) > CLOCK_SKEW_LIMIT:
        minutes = int(abs(skew).total_seconds() // 60)
        return HostCheck(
            False,
            CLOCK_SKEW,
            f"{head}: this host's clock is {minutes} min {'behind' if skew > dt.timedelta(0) else 'ahead of'} "
            "the storage service's — fix the clock (NTP) and retry",
        )
    return HostCheck(
        False,
        REVOKED,
        f"{head}: the storage service rejects AEP's token — revoked by a refresh (a newer token replaced its "
        "stored access policy) or altered on the way; run `provision rotate --resume` to put the current one live",
    )


def _header(exc: Any, name: str) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get(name)
    return str(value) if value else None


def _clock_skew(exc: Any, now: dt.datetime) -> dt.timedelta | None:
    """Service time minus ours, from the answer's `Date` header."""
    raw = _header(exc, "Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw) - now
    except (TypeError, ValueError):
        return None


def _first_line(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return mask_sas(mask(line))[:300]
