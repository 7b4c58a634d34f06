"""The Command Execution API 1.2 (`/api/1.2/contexts/*`, `/api/1.2/commands/*`) of the workspace emulator.

Shapes as the SDK sends and reads them (databricks-sdk-py `databricks/sdk/service/compute.py`,
`CommandExecutionAPI`): `POST contexts/create {clusterId, language}` → `{"id"}`;
`GET contexts/status?clusterId&contextId` → `{"id", "status": "Pending|Running|Error"}`;
`POST contexts/destroy {clusterId, contextId}`; `POST commands/execute {clusterId, contextId,
language, command}` → `{"id"}`; `GET commands/status?clusterId&contextId&commandId` →
`{"id", "status": "Queued|Running|Cancelling|Cancelled|Finished|Error", "results":
{"resultType": "text|error|…", "data" | "summary", "cause"}}`; `POST commands/cancel`.
A context needs a RUNNING cluster and dies with its driver (restart, termination).

The emulator runs no Python. It runs one program: the DLZ probe of
`provisioner/reach/probe.py`, recognised by its marker and its `wasbs://<container>@<account>…`
path. It lists that container for real — on Azurite, or through the oracle — with the SAS the
cluster's *effective* Spark config holds under `fs.azure.sas.<container>.<account>.blob.core.windows.net`
(the config as of its last start, secret references resolved then), and prints what the
probe prints on a cluster: `DLZ_PROBE {"ok": true}` or the WASB driver's Java error's first
line. Anything else gets an error result saying so. Commands finish before `execute` answers,
so the SDK's first status poll sees `Finished`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from provisioner.reach.probe import PROBE_MARKER
from provisioner.sandbox.blob import DlzBackend
from provisioner.sandbox.store import DatabricksError, SandboxStore

Body = dict[str, Any]
Endpoint = Callable[[str, Body], Body]

_WASBS_RE = re.compile(r"wasbs://(?P<container>[a-z0-9-]+)@(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net/")
_LANGUAGES = ("python", "scala", "sql", "r")


class CommandExecutionEmulator:
    def __init__(self, store: SandboxStore, dlz: DlzBackend) -> None:
        self.store = store
        self.dlz = dlz

    def endpoints(self) -> dict[str, tuple[str, Endpoint]]:
        """`{endpoint: (method, handler)}` for the workspace emulator's `/api/1.2/` routes."""
        return {
            "contexts/create": ("POST", self._create),
            "contexts/status": ("GET", self._context_status),
            "contexts/destroy": ("POST", self._destroy),
            "commands/execute": ("POST", self._execute),
            "commands/status": ("GET", self._command_status),
            "commands/cancel": ("POST", self._cancel),
        }

    def _create(self, ws: str, body: Body) -> Body:
        language = body.get("language") or "python"
        if language not in _LANGUAGES:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Unsupported language: {language}")
        return {"id": self.store.create_context(ws, _required(body, "clusterId"), language)}

    def _context_status(self, ws: str, body: Body) -> Body:
        context_id = _required(body, "contextId")
        return {"id": context_id, "status": self.store.context_status(ws, _required(body, "clusterId"), context_id)}

    def _destroy(self, ws: str, body: Body) -> Body:
        context_id = _required(body, "contextId")
        self.store.destroy_context(ws, _required(body, "clusterId"), context_id)
        return {"id": context_id}

    def _execute(self, ws: str, body: Body) -> Body:
        cluster_id, context_id = _required(body, "clusterId"), _required(body, "contextId")
        command = body.get("command")
        if not isinstance(command, str):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "Missing required field: command")
        if not self.store.context_cluster_running(ws, cluster_id, context_id):
            results: Body = {
                "resultType": "error",
                "summary": "The execution context is no longer available (the cluster restarted or terminated)",
                "cause": "ContextNotFound",
            }
            return {"id": self.store.add_command(ws, cluster_id, context_id, "Error", results)}
        results = self._run(ws, cluster_id, command)
        return {"id": self.store.add_command(ws, cluster_id, context_id, "Finished", results)}

    def _run(self, ws: str, cluster_id: str, command: str) -> Body:
        found = _WASBS_RE.search(command)
        if PROBE_MARKER not in command or found is None:
            return {
                "resultType": "error",
                "summary": "sandbox: this workspace runs only the DLZ probe (provisioner/reach/probe.py)",
                "cause": "NotImplementedError",
            }
        account, container = found.group("account"), found.group("container")
        conf = self.store.effective_spark_conf(ws, cluster_id) or {}
        sas = conf.get(f"fs.azure.sas.{container}.{account}.blob.core.windows.net")
        error = self.dlz.probe(account, container, sas)
        outcome: Body = {"ok": True} if error is None else {"ok": False, "error": error}
        return {"resultType": "text", "data": f"{PROBE_MARKER} {json.dumps(outcome)}"}

    def _command_status(self, ws: str, body: Body) -> Body:
        return self.store.command_status(
            ws, _required(body, "clusterId"), _required(body, "contextId"), _required(body, "commandId")
        )

    def _cancel(self, ws: str, body: Body) -> Body:
        command_id = _required(body, "commandId")
        self.store.cancel_command(ws, _required(body, "clusterId"), _required(body, "contextId"), command_id)
        return {"id": command_id}


def _required(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
    return value
