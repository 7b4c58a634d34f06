"""Databricks clusters: the state machine (specs and views: store/cluster_spec.py).

Cluster state transitions are stored as deadlines (`pending = {"to", "at"}`) and applied
lazily whenever the state is loaded: no background thread, and a reader in another
process sees exactly the same clock.

Real behaviours copied here (terraform-provider-databricks `clusters/resource_cluster.go`,
`clusters/clusters_api.go`; databricks-sdk-py `service/compute.py`):
- `is_pinned` is not a `clusters/get` field: the provider learns it from
  `clusters/list?filter_by.is_pinned=true` (`setPinnedStatus`);
- `clusters/list` (2.1) is paginated with `page_token` / `next_page_token`;
- `permanent-delete` of a pinned cluster fails with "You should unpin the cluster first"
  (`clusters_api_test.go`); the provider then unpins and retries;
- a cluster purged 30 days after termination answers `clusters/get` with 400
  `INVALID_STATE` (provider issue #1177, `wrapMissingClusterError`);
- knobs (faults): `last_restarted_time` that lags a start, a restart that fails to launch
  (`termination_reason` CLOUD_PROVIDER_LAUNCH_FAILURE / CLOUD_FAILURE with Azure parameters);
- the event log `clusters/events` reads (databricks-sdk-py `service/compute.py` `ClusterEvent`,
  `EventType`, `EventDetails`): CREATING at create, STARTING at start, RESTARTING, EDITED (with
  `previous_attributes`/`attributes`), RESIZING (`target_num_workers`), RUNNING when a start
  ends, TERMINATING with its `reason`, PINNED/UNPINNED (`user`); the newest `EVENTS_KEPT` are kept.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.files import mask_sas
from provisioner.sandbox.store.base import DatabricksError, State, StoreBase, now_ms, workspace_state
from provisioner.sandbox.store.cluster_spec import (
    cluster_id_of,
    cluster_view,
    list_view,
    new_cluster_id,
    require_version,
    validated_spec,
)
from provisioner.sandbox.store.ownership import (
    change_owner,
    check_reference_edit,
    owner_names,
    resolve_references,
)
from provisioner.sandbox.store.pinning import check_pin_limit, purge_at, purge_due, purged_error
from provisioner.sandbox.store.policies import enforce_policy
from provisioner.sandbox.store.records import due_clusters

SANDBOX_USER = "sandbox-user@example.com"
# What a restart that fails to launch ends with (knob `workspace.restart_fails`); the codes
# are databricks-sdk-py `service/compute.py` TerminationReasonCode / TerminationReasonType.
LAUNCH_FAILURE: dict[str, Any] = {
    "code": "CLOUD_PROVIDER_LAUNCH_FAILURE",
    "type": "CLOUD_FAILURE",
    "parameters": {
        "azure_error_code": "OperationNotAllowed",
        "azure_error_message": "Operation could not be completed as it results in exceeding approved "
        "standardDSv2Family Cores quota.",
    },
}

EVENTS_KEPT = 1000

_STATE_MESSAGES = {
    "PENDING": "Finding instances for new nodes, acquiring more instances if necessary",
    "RUNNING": "",
    "RESTARTING": "Restarting Spark",
    "RESIZING": "Resizing cluster",
    "TERMINATING": "Terminating cluster",
    "TERMINATED": "Terminated by user",
}


class ClusterStore(StoreBase):
    def _advance_clock(self, state: State, now: float) -> None:
        _advance(state, now)

    def _cluster_wake(self, cluster: Mapping[str, Any]) -> float | None:
        """The end of its pending transition, or its purge (store/pinning.py), whichever is first."""
        pending = cluster.get("pending")
        times = [float(pending["at"])] if pending else []
        purge = purge_at(cluster)
        if purge is not None:
            times.append(purge)
        return min(times) if times else None

    def ensure_workspace(self, workspace_key: str) -> None:
        with self._txn() as state:
            workspace_state(state, workspace_key)

    def workspace_keys(self) -> list[str]:
        with self._txn() as state:
            return sorted(state["workspaces"])

    def get_cluster(self, workspace_key: str, cluster_id: str) -> dict[str, Any] | None:
        """The `clusters/get` view, or None when there is no such cluster (purged: INVALID_STATE)."""
        with self._txn() as state:
            ws = state["workspaces"].get(workspace_key, {})
            if cluster_id in ws.get("purged", ()):
                _cluster(state, workspace_key, cluster_id)  # raises the purge error
            cluster = ws.get("clusters", {}).get(cluster_id)
            return None if cluster is None else cluster_view(cluster)

    def list_clusters(self, workspace_key: str) -> list[dict[str, Any]]:
        with self._view() as state:
            clusters = state["workspaces"].get(workspace_key, {}).get("clusters", {})
            return [cluster_view(c) for c in clusters.values()]

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
        creator: str = SANDBOX_USER,
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
            ws = workspace_state(st, workspace_key)
            cid = cluster_id or new_cluster_id()
            now = now_ms()
            cluster = _new_cluster(cid, full_spec, cluster_source, now)
            cluster["creator_user_name"] = creator
            ws["clusters"][cid] = cluster
            _event(cluster, "CREATING", {"user": creator})
            _begin_start(st, ws, cluster, "PENDING", 0.0)
            _advance(st, time.time())
            if state == "TERMINATED":
                _set_state(cluster, "TERMINATED")
            return cid

    def create_cluster(
        self,
        workspace_key: str,
        spec: Mapping[str, Any],
        cluster_source: str = "API",
        creator: str = SANDBOX_USER,
    ) -> str:
        body = validated_spec(spec, creator)
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            enforce_policy(ws, body)  # before the checks: a policy may supply what is missing
            require_version(body)
            cid = new_cluster_id()
            cluster = _new_cluster(cid, body, cluster_source, now_ms(), creator)
            ws["clusters"][cid] = cluster
            _event(cluster, "CREATING", {"user": creator})
            _begin_start(state, ws, cluster, "PENDING", self.start_duration())
            return cid

    def edit_cluster(self, workspace_key: str, spec: Mapping[str, Any], caller: str | None = None) -> None:
        """`caller` None: a test's own change, not an API call (no owner rule)."""
        cluster_id = cluster_id_of(spec)
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            body = validated_spec(spec, cluster["creator_user_name"])
            if cluster["cluster_source"] == "JOB":
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Job clusters cannot be edited.")
            if cluster["state"] not in ("RUNNING", "TERMINATED"):
                raise _invalid_state(cluster)
            if caller is not None:
                check_reference_edit(cluster, body, caller)  # store/ownership.py
            enforce_policy(ws, body)  # before the checks: a policy may supply what is missing
            require_version(body)
            who = caller or cluster["creator_user_name"]
            _event(
                cluster,
                "EDITED",
                {"user": who, "previous_attributes": _masked(cluster["spec"]), "attributes": _masked(body)},
            )
            cluster["spec"] = body
            if cluster["state"] == "RUNNING":
                _event(cluster, "RESTARTING", {"user": who})
                _begin_start(state, ws, cluster, "RESTARTING", self.start_duration())
            # A TERMINATED cluster keeps its state; the new config applies at its next start.

    def start_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] != "TERMINATED":
                raise _invalid_state(cluster)
            _event(cluster, "STARTING", {})
            _begin_start(state, ws, cluster, "PENDING", self.start_duration())

    def restart_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            ws = workspace_state(state, workspace_key)
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] in ("PENDING", "RESTARTING"):
                return  # already (re)starting: Databricks accepts and does nothing more
            if cluster["state"] != "RUNNING":
                raise _invalid_state(cluster)
            _event(cluster, "RESTARTING", {})
            _begin_start(state, ws, cluster, "RESTARTING", self.start_duration())
            cluster["restart_calls"] = int(cluster.get("restart_calls") or 0) + 1
            faults = state["faults"]
            if faults.get("workspace.restart_fails", 0) > 0:
                faults["workspace.restart_fails"] -= 1
                cluster["start_failure"] = dict(LAUNCH_FAILURE)

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
            _event(cluster, "RESIZING", {"target_num_workers": num_workers} if num_workers is not None else {})
            _set_state(cluster, "RESIZING", pending_to="RUNNING", after=self.start_duration())

    def delete_cluster(self, workspace_key: str, cluster_id: str) -> None:
        """Terminate (config kept)."""
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            if cluster["state"] in ("TERMINATING", "TERMINATED"):
                return
            _event(cluster, "TERMINATING", {"reason": {"code": "USER_REQUEST", "type": "SUCCESS"}})
            _set_state(cluster, "TERMINATING", pending_to="TERMINATED", after=self.start_duration())

    def permanent_delete_cluster(self, workspace_key: str, cluster_id: str) -> None:
        with self._txn() as state:
            if _cluster(state, workspace_key, cluster_id).get("is_pinned"):
                # The body provider issue #113 quotes; the provider matches "unpin the cluster first".
                raise DatabricksError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Cannot delete pinned cluster {cluster_id}. Please ask an admin to unpin the cluster first.",
                )
            del state["workspaces"][workspace_key]["clusters"][cluster_id]

    def pin_cluster(self, workspace_key: str, cluster_id: str, pinned: bool = True) -> None:
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            if pinned:
                check_pin_limit(state["workspaces"][workspace_key], cluster_id)
            cluster["is_pinned"] = pinned
            _event(cluster, "PINNED" if pinned else "UNPINNED", {})
            # Which state it was in when pinned: the provider pins right after create, before waiting.
            cluster["pinned_in_state"] = cluster["state"] if pinned else None

    def is_pinned(self, workspace_key: str, cluster_id: str) -> bool:
        """Not a clusters/get field (see the module docstring); for tests and clusters/list."""
        with self._txn() as state:
            return bool(_cluster(state, workspace_key, cluster_id).get("is_pinned"))

    def restart_calls(self, workspace_key: str, cluster_id: str) -> int:
        """How many clusters/restart calls restarted this cluster (for tests: converge must not loop)."""
        with self._txn() as state:
            return int(_cluster(state, workspace_key, cluster_id).get("restart_calls") or 0)

    def pinned_in_state(self, workspace_key: str, cluster_id: str) -> str | None:
        with self._txn() as state:
            value = _cluster(state, workspace_key, cluster_id).get("pinned_in_state")
            return None if value is None else str(value)

    def list_clusters_page(
        self,
        workspace_key: str,
        page_token: str | None,
        page_size: int,
        *,
        pinned_only: bool = False,
        states: frozenset[str] = frozenset(),
        pinned: bool | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of `clusters/list` (2.1): clusters in id order, and the token of the next page.

        `states` (`filter_by.cluster_states`): only clusters in one of them; empty means any.
        `pinned` (`filter_by.is_pinned`, "whether the clusters are pinned or not"): only the
        pinned (True) or only the unpinned (False) clusters; None, or `pinned_only` False, any.
        """
        if pinned_only:
            pinned = True
        offset = 0
        if page_token:
            try:
                offset = int(base64.urlsafe_b64decode(page_token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Invalid page_token") from None
        with self._view() as state:
            clusters = state["workspaces"].get(workspace_key, {}).get("clusters", {})
            chosen = [
                c
                for _, c in sorted(clusters.items())
                if (pinned is None or bool(c.get("is_pinned")) == pinned) and (not states or c["state"] in states)
            ]
            page = [list_view(c) for c in chosen[offset : offset + page_size]]
            more = offset + page_size < len(chosen)
            token = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode() if more else None
            return page, token

    def cluster_events(
        self,
        workspace_key: str,
        cluster_id: str,
        *,
        event_types: frozenset[str] = frozenset(),
        newest_first: bool = True,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[dict[str, Any]]:
        """The cluster's event log (`clusters/events`), filtered; the emulator pages it."""
        with self._txn() as state:
            cluster = _cluster(state, workspace_key, cluster_id)
            events = [
                {"cluster_id": cluster_id, **e}
                for e in cluster.get("events", [])
                if (not event_types or e["type"] in event_types)
                and (start_time is None or e["timestamp"] >= start_time)
                and (end_time is None or e["timestamp"] <= end_time)
            ]
            return events[::-1] if newest_first else events

    def change_cluster_owner(self, workspace_key: str, cluster_id: str, owner_username: str) -> None:
        """`clusters/change-owner` (admin only: the emulator checks who calls; store/ownership.py)."""
        with self._txn() as state:
            change_owner(_cluster(state, workspace_key, cluster_id), owner_username)

    def purge_cluster(self, workspace_key: str, cluster_id: str) -> None:
        """Time travel: Databricks removed this terminated, unpinned cluster after 30 days."""
        with self._txn() as state:
            _cluster(state, workspace_key, cluster_id)
            ws = workspace_state(state, workspace_key)
            del ws["clusters"][cluster_id]
            ws.setdefault("purged", []).append(cluster_id)


def _cluster(state: State, workspace_key: str, cluster_id: str) -> dict[str, Any]:
    ws = state["workspaces"].get(workspace_key, {})
    cluster: dict[str, Any] | None = ws.get("clusters", {}).get(cluster_id)
    if cluster is None and cluster_id in ws.get("purged", ()):
        raise purged_error(cluster_id)
    if cluster is None:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
    return cluster


def _invalid_state(cluster: Mapping[str, Any]) -> DatabricksError:
    pretty = cluster["state"].capitalize()
    return DatabricksError(400, "INVALID_STATE", f"Cluster {cluster['cluster_id']} is in unexpected state {pretty}.")


def _new_cluster(
    cluster_id: str, spec: dict[str, Any], source: str, now_ms: int, creator: str = SANDBOX_USER
) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id,
        "spec": dict(spec),
        "state": "PENDING",
        "state_message": _STATE_MESSAGES["PENDING"],
        "cluster_source": source,
        "creator_user_name": creator,
        # The creator may manage it (provider docs/resources/permissions.md, "Cluster usage").
        "acl": {creator: "CAN_MANAGE"},
        "start_time": now_ms,
        "is_pinned": False,
        "pending": None,
        "effective_spark_conf": {},
    }


def _begin_start(state: State, ws: Mapping[str, Any], cluster: dict[str, Any], run_state: str, seconds: float) -> None:
    # Databricks resolves secret references when the (re)start begins: this snapshot is
    # what the cluster runs with until its next start, whatever happens to the secret.
    owner = cluster["creator_user_name"]
    resolved, missing = resolve_references(cluster["spec"], ws["scopes"], owner, owner_names(state, owner))
    faults = state["faults"]
    cluster["effective_spark_conf"] = resolved
    previous = cluster.get("last_restarted_time")
    cluster["last_restarted_time"] = now_ms()
    cluster["last_start"] = {"began": time.time(), "seconds": seconds}  # not an API field: for bench/
    cluster.pop("start_failure", None)
    lag = float(faults.get("workspace.restart_time_lag_seconds") or 0)
    if lag > 0 and previous is not None:
        # The field catches up only `lag` seconds after the start finished.
        cluster["restart_time_shown"] = {"value": previous, "until": time.time() + seconds + lag}
    else:
        cluster.pop("restart_time_shown", None)
    cluster.pop("termination_reason", None)
    cluster.pop("terminated_time", None)
    if missing:
        cluster["start_error"] = (
            f"Failed to resolve secret reference: {missing}"
            if "lacks READ" in missing
            else f"Secret does not exist with {missing}"
        )
    else:
        cluster.pop("start_error", None)
    _set_state(cluster, run_state, pending_to="RUNNING", after=seconds)


def _set_state(cluster: dict[str, Any], state: str, *, pending_to: str | None = None, after: float = 0.0) -> None:
    cluster["state"] = state
    cluster["state_message"] = _STATE_MESSAGES.get(state, "")
    cluster["pending"] = None if pending_to is None else {"to": pending_to, "at": time.time() + after}
    if state == "TERMINATED":
        cluster["terminated_time"] = now_ms()
        cluster.setdefault("termination_reason", {"code": "USER_REQUEST", "type": "SUCCESS"})


def _advance(state: State, now: float) -> None:
    purge_due(state, int(now * 1000))  # store/pinning.py: the 30-day purge
    for ws in state["workspaces"].values():
        for _, cluster in due_clusters(ws, now):  # not every cluster: only those whose time may have come
            pending = cluster.get("pending")
            if not pending or pending["at"] > now:
                continue
            target = pending["to"]
            error = cluster.pop("start_error", None)
            failure = cluster.pop("start_failure", None)
            if target == "RUNNING" and failure:
                _event(cluster, "TERMINATING", {"reason": failure})
                cluster["termination_reason"] = failure
                _set_state(cluster, "TERMINATED")
                cluster["state_message"] = "Cluster launch failed: cloud provider launch failure"
                continue
            if target == "RUNNING" and error:
                # A start that cannot resolve its secrets fails the way Databricks does.
                cluster["termination_reason"] = {
                    "code": "SECRET_RESOLUTION_ERROR",
                    "type": "CLIENT_ERROR",
                }
                _event(cluster, "TERMINATING", {"reason": cluster["termination_reason"]})
                _set_state(cluster, "TERMINATED")
                cluster["state_message"] = error
                continue
            if target == "RUNNING" and cluster["state"] != "RESIZING":
                _event(cluster, "RUNNING", {})
            elif target == "RUNNING":
                _event(cluster, "UPSIZE_COMPLETED", {})
            _set_state(cluster, target)


def _event(cluster: dict[str, Any], kind: str, details: Mapping[str, Any]) -> None:
    events = cluster.setdefault("events", [])
    events.append({"timestamp": now_ms(), "type": kind, "details": dict(details)})
    del events[:-EVENTS_KEPT]


def _masked(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as an event shows it: SAS signatures in Spark settings masked (events are served and journalled)."""
    out = dict(spec)
    for field in ("spark_conf", "spark_env_vars"):
        if isinstance(out.get(field), dict):
            out[field] = {k: mask_sas(str(v)) for k, v in out[field].items()}
    return out
