"""AEP landing zones: credentials per (org, sandbox, type), refresh, expiry, and the DLZ oracle."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from provisioner.sandbox.store.base import State, StoreBase, now_ms, today

DATABRICKS_SOURCE = "dlz_databricks_source"
CREDENTIAL_TYPES = (DATABRICKS_SOURCE, "user_drop_zone", "dlz_destination")
_CONTAINERS = {
    DATABRICKS_SOURCE: "dlz-databricks-container",
    "user_drop_zone": "dlz-user-container",
    "dlz_destination": "dlz-destination",
}
DLZ_VALID_DAYS = 90
_ALNUM = string.digits + string.ascii_lowercase


def storage_account_name(org_id: str, sandbox_name: str) -> str:
    """Stable per (org, sandbox): goldens and users' configs depend on it not changing."""
    digest = hashlib.sha256(f"{org_id}\n{sandbox_name}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(15):
        number, rest = divmod(number, 36)
        chars.append(_ALNUM[rest])
    return "sndbxdtln" + "".join(chars)


def new_sas_token() -> str:
    """A SAS token in the real shape, its signature deliberately full of URL escapes.

    Forcing `/`, `+` and a trailing `=` means every run exercises the encoding paths
    (double-encoding, decoding by accident) that a lucky random signature would miss.
    """
    raw = list(base64.b64encode(secrets.token_bytes(32)).decode())  # 43 chars + "="
    slash, plus = secrets.SystemRandom().sample(range(40), 2)
    raw[slash], raw[plus] = "/", "+"
    sig = quote("".join(raw), safe="")
    return f"sv=2020-10-02&si=dlz-{uuid.uuid4()}&sr=c&sp=racwdlm&sig={sig}"


class DlzStore(StoreBase):
    def dlz_credentials(
        self, org_id: str, sandbox_name: str, cred_type: str = DATABRICKS_SOURCE, *, answer: bool = False
    ) -> dict[str, str]:
        """The Connectors API body for this sandbox; a fresh token once the old one expired.

        `answer=True` (the HTTP emulator) also consumes the `aep.expired` knob.
        """
        with self._txn() as state:
            record = _dlz_record(state, org_id, sandbox_name, cred_type)
            if record is None or date.fromisoformat(record["expiryDate"]) < today():
                record = _issue_dlz(state, org_id, sandbox_name, cred_type)
            if answer:
                _maybe_expire(state, record)
            return _dlz_body(record)

    def refresh_dlz(
        self, org_id: str, sandbox_name: str, cred_type: str = DATABRICKS_SOURCE, *, answer: bool = False
    ) -> dict[str, str]:
        """Rotate: a new token, and the previous one stops working at once."""
        with self._txn() as state:
            record = _issue_dlz(state, org_id, sandbox_name, cred_type)
            if answer:
                _maybe_expire(state, record)
            return _dlz_body(record)

    def expire_dlz(self, org_id: str, sandbox_name: str, cred_type: str = DATABRICKS_SOURCE) -> None:
        """Test helper: move the current token's expiryDate to yesterday (time travel)."""
        with self._txn() as state:
            record = _dlz_record(state, org_id, sandbox_name, cred_type)
            if record is None:
                raise KeyError(f"no landing zone for {org_id}/{sandbox_name}/{cred_type}")
            record["expiryDate"] = (today() - timedelta(days=1)).isoformat()

    def valid_tokens(self) -> list[dict[str, str]]:
        """Every SAS token AEP currently honours, with its container/account/owner."""
        with self._txn() as state:
            return [
                {**_dlz_body(r), "org_id": r["org_id"], "sandbox_name": r["sandbox_name"], "type": r["type"]}
                for r in state["dlz"].values()
                if _token_valid(r)
            ]

    # ---- the oracle --------------------------------------------------------------------

    def dlz_access(self, workspace_key: str, cluster_id: str) -> bool:
        """Could this cluster read its landing zone right now?

        True iff it is RUNNING and the Spark config it started with (secret references
        resolved at that start) carries, under AEP's exact key, a token AEP still honours.
        """
        return self.dlz_access_many(workspace_key, [cluster_id])[cluster_id]

    def dlz_access_many(self, workspace_key: str, cluster_ids: Iterable[str]) -> dict[str, bool]:
        """`dlz_access` of several clusters in one transaction (one state-file read, not one each)."""
        with self._txn() as state:
            clusters = state["workspaces"].get(workspace_key, {}).get("clusters", {})
            return {cid: _reaches_dlz(state, clusters.get(cid)) for cid in cluster_ids}


def _reaches_dlz(state: State, cluster: dict[str, Any] | None) -> bool:
    if cluster is None or cluster["state"] != "RUNNING":
        return False
    effective = cluster.get("effective_spark_conf") or {}
    for record in state["dlz"].values():
        if not _token_valid(record):
            continue
        key = f"fs.azure.sas.{record['containerName']}.{record['storageAccountName']}.blob.core.windows.net"
        if effective.get(key) == record["SASToken"]:
            return True
    return False


def _dlz_key(org_id: str, sandbox_name: str, cred_type: str) -> str:
    return f"{org_id}|{sandbox_name}|{cred_type}"


def _dlz_record(state: State, org_id: str, sandbox_name: str, cred_type: str) -> dict[str, Any] | None:
    return state["dlz"].get(_dlz_key(org_id, sandbox_name, cred_type))


def _issue_dlz(state: State, org_id: str, sandbox_name: str, cred_type: str) -> dict[str, Any]:
    if cred_type not in _CONTAINERS:
        raise ValueError(f"unknown credential type {cred_type!r}")
    key = _dlz_key(org_id, sandbox_name, cred_type)
    if key in state["dlz"]:
        # Replacing the record is the revocation: only the current token is honoured.
        state["revoked_tokens"] = state.get("revoked_tokens", 0) + 1
    record = {
        "org_id": org_id,
        "sandbox_name": sandbox_name,
        "type": cred_type,
        "containerName": _CONTAINERS[cred_type],
        "storageAccountName": storage_account_name(org_id, sandbox_name),
        "SASToken": new_sas_token(),
        "expiryDate": (today() + timedelta(days=DLZ_VALID_DAYS)).isoformat(),
        "issued_at": now_ms(),
    }
    state["dlz"][key] = record
    return record


def _maybe_expire(state: State, record: dict[str, Any]) -> None:
    # The knob makes AEP hand out a token that is already past its date, and the store
    # agrees (the oracle rejects it, the next GET replaces it): one consistent world.
    faults = state["faults"]
    if faults.get("aep.expired", 0) > 0:
        faults["aep.expired"] -= 1
        record["expiryDate"] = (today() - timedelta(days=1)).isoformat()


def _token_valid(record: Mapping[str, Any]) -> bool:
    return date.fromisoformat(record["expiryDate"]) >= today()


def _dlz_body(record: Mapping[str, Any]) -> dict[str, str]:
    account, container, token = record["storageAccountName"], record["containerName"], record["SASToken"]
    return {
        "containerName": container,
        "SASToken": token,
        "storageAccountName": account,
        "SASUri": f"https://{account}.blob.core.windows.net/{container}?{token}",
        "expiryDate": record["expiryDate"],
    }
