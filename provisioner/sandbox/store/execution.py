"""Command Execution API 1.2 state: execution contexts on running clusters, and their commands.

Kept in the state file (not in the emulator's memory) so a test in another process can
check that every context a command created was destroyed. A context belongs to the
cluster's driver as it was when the context was made: a restart or termination ends it
(its status turns `Error`), as on Databricks.
"""

from __future__ import annotations

import secrets
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State, StoreBase, now_ms, workspace_state


class ExecutionStore(StoreBase):
    def create_context(self, workspace_key: str, cluster_id: str, language: str) -> str:
        with self._txn() as state:
            cluster = _running_cluster(state, workspace_key, cluster_id)
            context_id = str(secrets.randbits(63))
            _contexts(state, workspace_key)[context_id] = {
                "cluster_id": cluster_id,
                "language": language,
                "driver_started": cluster.get("last_restarted_time") or cluster.get("start_time"),
                "created_ms": now_ms(),
                "commands": {},
            }
            return context_id

    def context_status(self, workspace_key: str, cluster_id: str, context_id: str) -> str:
        with self._txn() as state:
            context = _context(state, workspace_key, cluster_id, context_id)
            return "Running" if _alive(state, workspace_key, context) else "Error"

    def destroy_context(self, workspace_key: str, cluster_id: str, context_id: str) -> None:
        with self._txn() as state:
            _context(state, workspace_key, cluster_id, context_id)
            del _contexts(state, workspace_key)[context_id]

    def context_language(self, workspace_key: str, cluster_id: str, context_id: str) -> str:
        with self._txn() as state:
            return str(_context(state, workspace_key, cluster_id, context_id)["language"])

    def open_contexts(self, workspace_key: str) -> list[dict[str, Any]]:
        """Contexts not destroyed yet (tests: a probe must leave none behind)."""
        with self._txn() as state:
            return [
                {"id": k, "cluster_id": v["cluster_id"], "language": v["language"]}
                for k, v in _contexts(state, workspace_key).items()
            ]

    def context_cluster_running(self, workspace_key: str, cluster_id: str, context_id: str) -> bool:
        with self._txn() as state:
            return _alive(state, workspace_key, _context(state, workspace_key, cluster_id, context_id))

    def add_command(
        self, workspace_key: str, cluster_id: str, context_id: str, status: str, results: dict[str, Any]
    ) -> str:
        with self._txn() as state:
            context = _context(state, workspace_key, cluster_id, context_id)
            command_id = secrets.token_hex(16)
            context["commands"][command_id] = {"status": status, "results": results}
            return command_id

    def command_status(self, workspace_key: str, cluster_id: str, context_id: str, command_id: str) -> dict[str, Any]:
        with self._txn() as state:
            command = _command(state, workspace_key, cluster_id, context_id, command_id)
            return {"id": command_id, "status": command["status"], "results": command["results"]}

    def cancel_command(self, workspace_key: str, cluster_id: str, context_id: str, command_id: str) -> None:
        with self._txn() as state:
            command = _command(state, workspace_key, cluster_id, context_id, command_id)
            if command["status"] in ("Queued", "Running"):
                command["status"] = "Cancelled"


def _contexts(state: State, workspace_key: str) -> dict[str, Any]:
    contexts: dict[str, Any] = workspace_state(state, workspace_key).setdefault("contexts", {})
    return contexts


def _running_cluster(state: State, workspace_key: str, cluster_id: str) -> dict[str, Any]:
    cluster = workspace_state(state, workspace_key)["clusters"].get(cluster_id)
    if cluster is None:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
    if cluster["state"] != "RUNNING":
        raise DatabricksError(
            400, "INVALID_STATE", f"Cluster {cluster_id} is in unexpected state {cluster['state']}: not running"
        )
    result: dict[str, Any] = cluster
    return result


def _context(state: State, workspace_key: str, cluster_id: str, context_id: str) -> dict[str, Any]:
    context = _contexts(state, workspace_key).get(context_id)
    if context is None or context["cluster_id"] != cluster_id:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Context {context_id} does not exist")
    result: dict[str, Any] = context
    return result


def _command(state: State, workspace_key: str, cluster_id: str, context_id: str, command_id: str) -> dict[str, Any]:
    command = _context(state, workspace_key, cluster_id, context_id)["commands"].get(command_id)
    if command is None:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Command {command_id} does not exist")
    result: dict[str, Any] = command
    return result


def _alive(state: State, workspace_key: str, context: dict[str, Any]) -> bool:
    """The driver the context lives in is still up: same start, still RUNNING."""
    cluster = workspace_state(state, workspace_key)["clusters"].get(context["cluster_id"])
    if cluster is None or cluster["state"] != "RUNNING":
        return False
    started = cluster.get("last_restarted_time") or cluster.get("start_time")
    return bool(started == context["driver_started"])
