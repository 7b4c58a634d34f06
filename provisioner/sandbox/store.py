"""The sandbox's persisted world: AEP landing zones, Databricks workspaces, fault knobs.

Everything lives in `<state_dir>/state.json`. Each operation runs under an exclusive
`fcntl.flock` on `<state_dir>/state.lock` and goes load → advance clocks → change →
write tmp → `os.replace`, so the emulator server, a second `provision` run and a test
process all see one consistent state. The file holds SAS tokens and secret values, so it
is created 0600.

Cluster state transitions are stored as deadlines (`pending = {"to", "at"}`) and applied
lazily whenever the state is loaded: no background thread, and a reader in another
process sees exactly the same clock.
"""

from __future__ import annotations

import base64
import copy
import fcntl
import hashlib
import json
import os
import re
import secrets
import string
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

State = dict[str, Any]

DATABRICKS_SOURCE = "dlz_databricks_source"
CREDENTIAL_TYPES = (DATABRICKS_SOURCE, "user_drop_zone", "dlz_destination")
_CONTAINERS = {
    DATABRICKS_SOURCE: "dlz-databricks-container",
    "user_drop_zone": "dlz-user-container",
    "dlz_destination": "dlz-destination",
}
DLZ_VALID_DAYS = 90

DEFAULT_CLUSTER_START_SECONDS = 0.3
START_SECONDS_ENV = "PROVISION_SANDBOX_CLUSTER_START_SECONDS"
SANDBOX_USER = "sandbox-user@example.com"

DEFAULT_FAULTS: dict[str, Any] = {
    "aep.status_429": 0,
    "aep.retry_after": None,
    "aep.status_5xx": 0,
    "aep.status_5xx_code": 503,
    "aep.latency_ms": 0,
    "aep.expired": 0,
    "aep.html": 0,
    "workspace.fail": {},
}

_SECRET_REF = re.compile(r"\{\{secrets/([^/{}]+)/([^/{}]+)\}\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_ALNUM = string.digits + string.ascii_lowercase

# Fields only the server sets; a client echoing them back must not overwrite ours.
_READ_ONLY_FIELDS = frozenset(
    {
        "cluster_id",
        "state",
        "state_message",
        "cluster_source",
        "start_time",
        "last_restarted_time",
        "terminated_time",
        "termination_reason",
        "creator_user_name",
        "default_tags",
        "is_pinned",
        "pinned_by_user_name",
        "no_wait",
    }
)
_STATE_MESSAGES = {
    "PENDING": "Finding instances for new nodes, acquiring more instances if necessary",
    "RUNNING": "",
    "RESTARTING": "Restarting Spark",
    "RESIZING": "Resizing cluster",
    "TERMINATING": "Terminating cluster",
    "TERMINATED": "Terminated by user",
}


class DatabricksError(Exception):
    """A Databricks REST error: the workspace emulator turns it into the JSON error body."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class AepFault:
    """What the fault knobs make of one AEP request (consumed atomically)."""

    latency_ms: int = 0
    html: bool = False
    status: int | None = None  # 429 or a 5xx
    retry_after: int | None = None


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


def _today() -> date:
    return datetime.now(UTC).date()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _empty_state() -> State:
    return {
        "version": 1,
        "dlz": {},
        "revoked_tokens": 0,
        "workspaces": {},
        "connections": [],
        "faults": copy.deepcopy(DEFAULT_FAULTS),
    }


def _knob_name(name: str) -> str:
    # Lets callers write set_faults(aep_status_429=2) as well as **{"aep.status_429": 2}.
    return name if "." in name else name.replace("_", ".", 1)


class SandboxStore:
    """The sandbox's state file; every public method is one locked transaction."""

    def __init__(self, state_dir: Path, cluster_start_seconds: float | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.state_dir / "state.json"
        self.lock_path = self.state_dir / "state.lock"
        if cluster_start_seconds is None:
            env = os.environ.get(START_SECONDS_ENV)
            cluster_start_seconds = float(env) if env else DEFAULT_CLUSTER_START_SECONDS
        self.cluster_start_seconds = cluster_start_seconds

    # ---- transaction machinery -------------------------------------------------------

    @contextmanager
    def _txn(self) -> Iterator[State]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = self.path.read_text() if self.path.exists() else ""
            state = json.loads(raw) if raw else _empty_state()
            before = json.loads(raw) if raw else None
            _advance(state, time.time())
            yield state
            # Reached only without an exception: a failed operation leaves no half-change.
            # Compare parsed documents, not text: json.dumps with indent is pure Python and
            # cost ~5 ms per request at 100 clusters, on every read (bench/NOTES.md).
            if state != before:
                self._write(json.dumps(state, indent=1, sort_keys=True))
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(f".state.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def reset(self) -> None:
        """Forget everything (landing zones, workspaces, connections, knobs)."""
        with self._txn() as state:
            state.clear()
            state.update(_empty_state())

    def snapshot(self) -> State:
        """A deep copy of the whole state (secrets included: for tests, not for output)."""
        with self._txn() as state:
            return copy.deepcopy(state)

    # ---- AEP landing zones -----------------------------------------------------------

    def dlz_credentials(
        self, org_id: str, sandbox_name: str, cred_type: str = DATABRICKS_SOURCE, *, answer: bool = False
    ) -> dict[str, str]:
        """The Connectors API body for this sandbox; a fresh token once the old one expired.

        `answer=True` (the HTTP emulator) also consumes the `aep.expired` knob.
        """
        with self._txn() as state:
            record = _dlz_record(state, org_id, sandbox_name, cred_type)
            if record is None or date.fromisoformat(record["expiryDate"]) < _today():
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
            record["expiryDate"] = (_today() - timedelta(days=1)).isoformat()

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
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
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

    # ---- workspaces and clusters -------------------------------------------------------

    def ensure_workspace(self, workspace_key: str) -> None:
        with self._txn() as state:
            _workspace(state, workspace_key)

    def workspace_keys(self) -> list[str]:
        with self._txn() as state:
            return sorted(state["workspaces"])

    def set_policy_spark_conf(self, workspace_key: str, conf: Mapping[str, str]) -> None:
        """Keys a 'cluster policy' forces into every cluster's spark_conf on create/edit."""
        with self._txn() as state:
            _workspace(state, workspace_key)["policy_spark_conf"] = dict(conf)

    def get_cluster(self, workspace_key: str, cluster_id: str) -> dict[str, Any] | None:
        """The `clusters/get` view, or None when there is no such cluster."""
        with self._txn() as state:
            cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
            return None if cluster is None else _cluster_view(cluster)

    def list_clusters(self, workspace_key: str) -> list[dict[str, Any]]:
        with self._txn() as state:
            clusters = state["workspaces"].get(workspace_key, {}).get("clusters", {})
            return [_cluster_view(c) for c in clusters.values()]

    def effective_spark_conf(self, workspace_key: str, cluster_id: str) -> dict[str, str] | None:
        """The spark_conf the cluster really runs with (as of its last start); for tests."""
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            return dict(cluster.get("effective_spark_conf") or {})

    def add_cluster(
        self,
        workspace_key: str,
        spec: Mapping[str, Any] | None = None,
        *,
        state: str = "RUNNING",
        cluster_source: str = "UI",
        cluster_id: str | None = None,
    ) -> str:
        """Test helper: a cluster that existed before us (e.g. for adopt), RUNNING or TERMINATED."""
        if state not in ("RUNNING", "TERMINATED"):
            raise ValueError("add_cluster creates RUNNING or TERMINATED clusters")
        full_spec = {
            "cluster_name": "existing-cluster",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "num_workers": 1,
            "autotermination_minutes": 60,
            **(spec or {}),
        }
        with self._txn() as st:
            ws = _workspace(st, workspace_key)
            cid = cluster_id or _new_cluster_id()
            now = _now_ms()
            cluster = _new_cluster(cid, full_spec, cluster_source, now)
            ws["clusters"][cid] = cluster
            _begin_start(ws, cluster, "PENDING", 0.0)
            _advance(st, time.time())
            if state == "TERMINATED":
                _set_state(cluster, "TERMINATED")
            return cid

    def create_cluster(self, workspace_key: str, spec: Mapping[str, Any], cluster_source: str = "API") -> str:
        body = _validated_spec(spec, require_version=True)
        with self._txn() as state:
            ws = _workspace(state, workspace_key)
            _apply_policy(ws, body)
            cid = _new_cluster_id()
            cluster = _new_cluster(cid, body, cluster_source, _now_ms())
            ws["clusters"][cid] = cluster
            _begin_start(ws, cluster, "PENDING", self.cluster_start_seconds)
            return cid

    def edit_cluster(self, workspace_key: str, spec: Mapping[str, Any]) -> None:
        cluster_id = _cluster_id_of(spec)
        body = _validated_spec(spec, require_version=True)
        with self._txn() as state:
            ws = _workspace(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["cluster_source"] == "JOB":
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Job clusters cannot be edited.")
            if cluster["state"] not in ("RUNNING", "TERMINATED"):
                raise _invalid_state(cluster)
            _apply_policy(ws, body)
            cluster["spec"] = body
            if cluster["state"] == "RUNNING":
                _begin_start(ws, cluster, "RESTARTING", self.cluster_start_seconds)
            # A TERMINATED cluster keeps its state; the new config applies at its next start.

    def start_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            ws = _workspace(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] != "TERMINATED":
                raise _invalid_state(cluster)
            _begin_start(ws, cluster, "PENDING", self.cluster_start_seconds)

    def restart_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            ws = _workspace(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] in ("PENDING", "RESTARTING"):
                return  # already (re)starting: Databricks accepts and does nothing more
            if cluster["state"] != "RUNNING":
                raise _invalid_state(cluster)
            _begin_start(ws, cluster, "RESTARTING", self.cluster_start_seconds)

    def resize_cluster(
        self,
        workspace_key: str,
        cluster_id: str,
        num_workers: int | None = None,
        autoscale: Mapping[str, int] | None = None,
    ) -> None:
        if (num_workers is None) == (autoscale is None):
            raise DatabricksError(
                400, "INVALID_PARAMETER_VALUE", "Exactly one of num_workers or autoscale must be specified."
            )
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] != "RUNNING":
                raise _invalid_state(cluster)
            spec = cluster["spec"]
            spec.pop("num_workers", None)
            spec.pop("autoscale", None)
            if num_workers is not None:
                spec["num_workers"] = int(num_workers)
            else:
                spec["autoscale"] = dict(autoscale or {})
            # No restart: the effective Spark config and last_restarted_time stay as they were.
            _set_state(cluster, "RESIZING", pending_to="RUNNING", after=self.cluster_start_seconds)

    def delete_cluster(self, workspace_key: str, cluster_id: str) -> None:
        """Terminate (config kept)."""
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] in ("TERMINATING", "TERMINATED"):
                return
            _set_state(cluster, "TERMINATING", pending_to="TERMINATED", after=self.cluster_start_seconds)

    def permanent_delete_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            _cluster(state, workspace_key, cluster_id)
            del state["workspaces"][workspace_key]["clusters"][cluster_id]

    def pin_cluster(self, workspace_key: str, cluster_id: str, pinned: bool = True) -> None:
        with self._txn() as state:
            _cluster(state, workspace_key, cluster_id)["is_pinned"] = pinned

    # ---- secrets -----------------------------------------------------------------------

    def create_scope(self, workspace_key: str, scope: str, backend_type: str = "DATABRICKS") -> None:
        if not isinstance(scope, str) or not _NAME_RE.match(scope):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid scope name: {scope!r}")
        with self._txn() as state:
            scopes = _workspace(state, workspace_key)["scopes"]
            if scope in scopes:
                raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!")
            scopes[scope] = {"backend_type": backend_type, "secrets": {}}

    def delete_scope(self, workspace_key: str, scope: str) -> None:
        with self._txn() as state:
            scopes = _workspace(state, workspace_key)["scopes"]
            _scope(scopes, scope)
            del scopes[scope]

    def list_scopes(self, workspace_key: str) -> list[dict[str, str]]:
        with self._txn() as state:
            scopes = _workspace(state, workspace_key)["scopes"]
            return [{"name": n, "backend_type": s["backend_type"]} for n, s in sorted(scopes.items())]

    def put_secret(self, workspace_key: str, scope: str, key: str, value: str) -> None:
        if not isinstance(key, str) or not _NAME_RE.match(key):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid secret key: {key!r}")
        with self._txn() as state:
            entry = _scope(_workspace(state, workspace_key)["scopes"], scope)
            entry["secrets"][key] = {"value": value, "last_updated_timestamp": _now_ms()}

    def delete_secret(self, workspace_key: str, scope: str, key: str) -> None:
        with self._txn() as state:
            entry = _scope(_workspace(state, workspace_key)["scopes"], scope)
            if key not in entry["secrets"]:
                raise DatabricksError(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Secret does not exist with scope: {scope} and key: {key}",
                )
            del entry["secrets"][key]

    def list_secrets(self, workspace_key: str, scope: str) -> list[dict[str, Any]]:
        """Keys and timestamps only: Databricks never gives values back."""
        with self._txn() as state:
            entry = _scope(_workspace(state, workspace_key)["scopes"], scope)
            return [
                {"key": k, "last_updated_timestamp": s["last_updated_timestamp"]}
                for k, s in sorted(entry["secrets"].items())
            ]

    def secret_value(self, workspace_key: str, scope: str, key: str) -> str | None:
        """Test helper (there is no such API): what a cluster would resolve right now."""
        with self._txn() as state:
            scope_entry = _workspace(state, workspace_key)["scopes"].get(scope, {})
            secret = scope_entry.get("secrets", {}).get(key)
            return None if secret is None else secret["value"]

    # ---- Flow Service connections ------------------------------------------------------

    def add_connection(self, org_id: str, sandbox_name: str, body: Mapping[str, Any]) -> dict[str, str]:
        with self._txn() as state:
            now = _now_ms()
            record = {
                **copy.deepcopy(dict(body)),
                "id": str(uuid.uuid4()),
                "etag": f'"{uuid.uuid4().hex[:8]}-0000-0200-0000-{uuid.uuid4().hex[:12]}"',
                "org_id": org_id,
                "sandbox_name": sandbox_name,
                "createdAt": now,
                "updatedAt": now,
                "state": "enabled",
            }
            state["connections"].append(record)
            return {"id": record["id"], "etag": record["etag"]}

    def connections(self) -> list[dict[str, Any]]:
        """Every stored connection, access tokens included (tests check what was sent)."""
        with self._txn() as state:
            return copy.deepcopy(state["connections"])

    # ---- fault knobs -------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        with self._txn() as state:
            return copy.deepcopy(state["faults"])

    def set_faults(self, **knobs: Any) -> None:
        """Merge knob values: `set_faults(aep_status_429=2)` or `**{"aep.status_429": 2}`."""
        updates = {_knob_name(k): v for k, v in knobs.items()}
        unknown = sorted(set(updates) - set(DEFAULT_FAULTS))
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}")
        if "aep.expired" in updates:
            updates["aep.expired"] = int(updates["aep.expired"])
        with self._txn() as state:
            state["faults"].update(copy.deepcopy(updates))

    def clear_faults(self) -> None:
        with self._txn() as state:
            state["faults"] = copy.deepcopy(DEFAULT_FAULTS)

    def take_aep_fault(self) -> AepFault:
        """Consume at most one status fault (HTML page, then 429, then 5xx) for a request."""
        with self._txn() as state:
            f = state["faults"]
            latency = int(f.get("aep.latency_ms") or 0)
            if f.get("aep.html", 0) > 0:
                f["aep.html"] -= 1
                return AepFault(latency_ms=latency, html=True)
            if f.get("aep.status_429", 0) > 0:
                f["aep.status_429"] -= 1
                retry = f.get("aep.retry_after")
                return AepFault(latency_ms=latency, status=429, retry_after=retry)
            if f.get("aep.status_5xx", 0) > 0:
                f["aep.status_5xx"] -= 1
                return AepFault(latency_ms=latency, status=int(f.get("aep.status_5xx_code") or 503))
            return AepFault(latency_ms=latency)

    def take_workspace_fail(self, endpoint: str) -> bool:
        """True (and one fewer left) when `workspace.fail[endpoint]` says this call fails."""
        with self._txn() as state:
            fails = state["faults"].setdefault("workspace.fail", {})
            if fails.get(endpoint, 0) > 0:
                fails[endpoint] -= 1
                return True
            return False


# ---- helpers on the plain state dict (always called inside a transaction) -----------


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
        "expiryDate": (_today() + timedelta(days=DLZ_VALID_DAYS)).isoformat(),
        "issued_at": _now_ms(),
    }
    state["dlz"][key] = record
    return record


def _maybe_expire(state: State, record: dict[str, Any]) -> None:
    # The knob makes AEP hand out a token that is already past its date, and the store
    # agrees (the oracle rejects it, the next GET replaces it): one consistent world.
    faults = state["faults"]
    if faults.get("aep.expired", 0) > 0:
        faults["aep.expired"] -= 1
        record["expiryDate"] = (_today() - timedelta(days=1)).isoformat()


def _token_valid(record: Mapping[str, Any]) -> bool:
    return date.fromisoformat(record["expiryDate"]) >= _today()


def _dlz_body(record: Mapping[str, Any]) -> dict[str, str]:
    account, container, token = record["storageAccountName"], record["containerName"], record["SASToken"]
    return {
        "containerName": container,
        "SASToken": token,
        "storageAccountName": account,
        "SASUri": f"https://{account}.blob.core.windows.net/{container}?{token}",
        "expiryDate": record["expiryDate"],
    }


def _workspace(state: State, key: str) -> dict[str, Any]:
    return state["workspaces"].setdefault(key, {"clusters": {}, "scopes": {}, "policy_spark_conf": {}})


def _cluster(state: State, workspace_key: str, cluster_id: str) -> dict[str, Any]:
    cluster = state["workspaces"].get(workspace_key, {}).get("clusters", {}).get(cluster_id)
    if cluster is None:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
    return cluster


def _scope(scopes: dict[str, Any], scope: str) -> dict[str, Any]:
    if scope not in scopes:
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
    return scopes[scope]


def _cluster_id_of(spec: Mapping[str, Any]) -> str:
    cluster_id = spec.get("cluster_id")
    if not isinstance(cluster_id, str) or not cluster_id:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: cluster_id")
    return cluster_id


def _invalid_state(cluster: Mapping[str, Any]) -> DatabricksError:
    pretty = cluster["state"].capitalize()
    return DatabricksError(400, "INVALID_STATE", f"Cluster {cluster['cluster_id']} is in unexpected state {pretty}.")


def _new_cluster_id() -> str:
    now = datetime.now(UTC)
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(8))
    return f"{now:%m%d}-{now:%H%M%S}-{suffix}"


def _validated_spec(spec: Mapping[str, Any], *, require_version: bool) -> dict[str, Any]:
    body = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _READ_ONLY_FIELDS}
    if require_version and not body.get("spark_version"):
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: spark_version")
    if "num_workers" in body and "autoscale" in body:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Only one of num_workers or autoscale may be specified.")
    minutes = body.get("autotermination_minutes")
    if minutes is not None and not (minutes == 0 or 10 <= minutes <= 43200):
        raise DatabricksError(
            400,
            "INVALID_PARAMETER_VALUE",
            "Automatic termination minutes must be 0 or between 10 and 43200.",
        )
    for field in ("spark_conf", "spark_env_vars", "custom_tags"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"{field} must map strings to strings")
    return body


def _apply_policy(ws: Mapping[str, Any], body: dict[str, Any]) -> None:
    policy = ws.get("policy_spark_conf") or {}
    if policy:
        body["spark_conf"] = {**(body.get("spark_conf") or {}), **policy}


def _new_cluster(cluster_id: str, spec: dict[str, Any], source: str, now_ms: int) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id,
        "spec": dict(spec),
        "state": "PENDING",
        "state_message": _STATE_MESSAGES["PENDING"],
        "cluster_source": source,
        "creator_user_name": SANDBOX_USER,
        "start_time": now_ms,
        "is_pinned": False,
        "pending": None,
        "effective_spark_conf": {},
    }


def _resolve(conf: Mapping[str, str], scopes: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """Spark conf with secret references replaced by today's values, or the first bad reference."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        secret = scopes.get(match.group(1), {}).get("secrets", {}).get(match.group(2))
        if secret is None:
            missing.append(f"scope: {match.group(1)} and key: {match.group(2)}")
            return match.group(0)
        return str(secret["value"])

    resolved = {k: _SECRET_REF.sub(sub, v) for k, v in conf.items()}
    return resolved, (missing[0] if missing else None)


def _begin_start(ws: Mapping[str, Any], cluster: dict[str, Any], state: str, seconds: float) -> None:
    # Databricks resolves secret references when the (re)start begins: this snapshot is
    # what the cluster runs with until its next start, whatever happens to the secret.
    resolved, missing = _resolve(cluster["spec"].get("spark_conf") or {}, ws["scopes"])
    cluster["effective_spark_conf"] = resolved
    cluster["last_restarted_time"] = _now_ms()
    cluster.pop("termination_reason", None)
    cluster.pop("terminated_time", None)
    if missing:
        cluster["start_error"] = f"Secret does not exist with {missing}"
    else:
        cluster.pop("start_error", None)
    _set_state(cluster, state, pending_to="RUNNING", after=seconds)


def _set_state(cluster: dict[str, Any], state: str, *, pending_to: str | None = None, after: float = 0.0) -> None:
    cluster["state"] = state
    cluster["state_message"] = _STATE_MESSAGES.get(state, "")
    cluster["pending"] = None if pending_to is None else {"to": pending_to, "at": time.time() + after}
    if state == "TERMINATED":
        cluster["terminated_time"] = _now_ms()
        cluster.setdefault("termination_reason", {"code": "USER_REQUEST", "type": "SUCCESS"})


def _advance(state: State, now: float) -> None:
    for ws in state["workspaces"].values():
        for cluster in ws["clusters"].values():
            pending = cluster.get("pending")
            if not pending or pending["at"] > now:
                continue
            target = pending["to"]
            error = cluster.pop("start_error", None)
            if target == "RUNNING" and error:
                # A start that cannot resolve its secrets fails the way Databricks does.
                cluster["termination_reason"] = {
                    "code": "SECRET_RESOLUTION_ERROR",
                    "type": "CLIENT_ERROR",
                }
                _set_state(cluster, "TERMINATED")
                cluster["state_message"] = error
                continue
            _set_state(cluster, target)


def _cluster_view(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """What `clusters/get` answers: the accepted spec unchanged, plus server fields."""
    spec = copy.deepcopy(cluster["spec"])
    view: dict[str, Any] = {"cluster_id": cluster["cluster_id"], **spec}
    if "num_workers" not in spec and "autoscale" not in spec:
        view["num_workers"] = 0
    if "node_type_id" in spec:
        view.setdefault("driver_node_type_id", spec["node_type_id"])
    view.setdefault("autotermination_minutes", 0)
    view.setdefault("enable_elastic_disk", True)
    view.setdefault("data_security_mode", "NONE")
    view.setdefault("runtime_engine", "STANDARD")
    view["default_tags"] = {
        "Vendor": "Databricks",
        "Creator": cluster["creator_user_name"],
        "ClusterName": spec.get("cluster_name", ""),
        "ClusterId": cluster["cluster_id"],
    }
    view["creator_user_name"] = cluster["creator_user_name"]
    view["state"] = cluster["state"]
    view["state_message"] = cluster["state_message"]
    view["cluster_source"] = cluster["cluster_source"]
    view["start_time"] = cluster["start_time"]
    for field in ("last_restarted_time", "terminated_time", "termination_reason"):
        if field in cluster:
            view[field] = copy.deepcopy(cluster[field])
    view["is_pinned"] = bool(cluster.get("is_pinned"))
    return view
