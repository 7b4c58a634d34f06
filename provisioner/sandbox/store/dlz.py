"""AEP landing zones: credentials per (org, sandbox, type), refresh, expiry, and the DLZ oracle.

Each landing zone is a container in a storage account named like the `storageAccountName`
AEP hands out. The account key lives here (one per account, never shown), and every token
is a real service SAS bound to a stored access policy (`si=dlz-<uuid>`), signed with
`azure-storage-blob`'s `generate_container_sas`: the store is the one source of truth, and
the Azurite backend (`provisioner/sandbox/blob.py`) replays it — container plus the current
policy only — so replacing the policy on a refresh revokes the old token as Azure does.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

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


SAS_PERMISSIONS = "racwdlm"


def new_account_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def new_sas_token(
    account: str = "sndbxdtlnexample",
    container: str = _CONTAINERS[DATABRICKS_SOURCE],
    account_key: str | None = None,
    policy_id: str | None = None,
) -> str:
    """A service SAS for the container, bound to the stored access policy `policy_id`.

    AEP's shape (`sv&si&sr=c&sp=racwdlm&sig`, every value fully URL-encoded). The policy id
    is drawn again until the signature holds `/` and `+` (about four draws): every run then
    exercises the encoding paths (double-encoding, decoding by accident) that a lucky
    signature would miss. A `policy_id` given by the caller is kept as it is.
    """
    from azure.storage.blob import generate_container_sas  # ~0.4 s to import: only when issuing

    key = account_key or new_account_key()
    while True:
        si = policy_id or f"dlz-{uuid.uuid4()}"
        sdk_token = generate_container_sas(
            account, container, account_key=key, policy_id=si, permission=SAS_PERMISSIONS
        )
        fields = dict(parse_qsl(sdk_token))
        if policy_id is not None or ("/" in fields["sig"] and "+" in fields["sig"]):
            break
    return "&".join(
        f"{name}={quote(fields[name], safe='')}" for name in ("sv", "si", "sr", "sp", "sig") if name in fields
    )


def sas_fields(token: str) -> dict[str, str]:
    """The decoded query fields of a SAS token (`si`, `sig`, …)."""
    return dict(parse_qsl(token, keep_blank_values=True))


def policy_window(record: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """(start, expiry) of the record's stored access policy: valid through its expiryDate (UTC)."""
    start = datetime.fromtimestamp(record["issued_at"] / 1000, UTC) - timedelta(minutes=5)
    expiry = datetime.combine(date.fromisoformat(record["expiryDate"]) + timedelta(days=1), time(), UTC)
    return start, expiry


class DlzStore(StoreBase):
    def dlz_credentials(
        self, org_id: str, sandbox_name: str, cred_type: str = DATABRICKS_SOURCE, *, answer: bool = False
    ) -> dict[str, str]:
        """The Connectors API body for this sandbox; a fresh token once the old one expired.

        `answer=True` (the HTTP emulator) also consumes the `aep.expired` knob.
        """
        with self._txn() as state:
            record = _dlz_record(state, org_id, sandbox_name, cred_type)
            # A record without a policy predates real SAS tokens: issue one that Azurite can honour.
            if record is None or date.fromisoformat(record["expiryDate"]) < today() or "policyId" not in record:
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

    def note_dlz_backend(self, backend: str) -> bool:
        """Remember which DLZ backend this state uses; True when that is news (say it once)."""
        with self._txn() as state:
            if state.get("dlz_backend") == backend:
                return False
            state["dlz_backend"] = backend
            return True

    def dlz_records(self) -> list[dict[str, Any]]:
        """Every landing zone with its account key and current policy: what Azurite replays."""
        with self._txn() as state:
            keys = state.get("dlz_accounts", {})
            return [
                {**record, "accountKey": keys.get(record["storageAccountName"], "")} for record in state["dlz"].values()
            ]

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
        with self._view() as state:
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
    record: dict[str, Any] | None = state["dlz"].get(_dlz_key(org_id, sandbox_name, cred_type))
    return record


def _issue_dlz(state: State, org_id: str, sandbox_name: str, cred_type: str) -> dict[str, Any]:
    if cred_type not in _CONTAINERS:
        raise ValueError(f"unknown credential type {cred_type!r}")
    key = _dlz_key(org_id, sandbox_name, cred_type)
    if key in state["dlz"]:
        # Replacing the record is the revocation: only the current token is honoured.
        state["revoked_tokens"] = state.get("revoked_tokens", 0) + 1
    account, container = storage_account_name(org_id, sandbox_name), _CONTAINERS[cred_type]
    account_key = state.setdefault("dlz_accounts", {}).setdefault(account, new_account_key())
    token = new_sas_token(account, container, account_key)
    record = {
        "org_id": org_id,
        "sandbox_name": sandbox_name,
        "type": cred_type,
        "containerName": container,
        "storageAccountName": account,
        "SASToken": token,
        "policyId": sas_fields(token)["si"],
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
