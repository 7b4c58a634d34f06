"""The Command Execution API 1.2 (`/api/1.2/contexts/*`, `/api/1.2/commands/*`) of the workspace emulator.

Shapes as the SDK sends and reads them (databricks-sdk-py `databricks/sdk/service/compute.py`,
`CommandExecutionAPI`): `POST contexts/create {clusterId, language}` → `{"id"}`;
`GET contexts/status?clusterId&contextId` → `{"id", "status": "Pending|Running|Error"}`;
`POST contexts/destroy {clusterId, contextId}`; `POST commands/execute {clusterId, contextId,
language, command}` → `{"id"}`; `GET commands/status?clusterId&contextId&commandId` →
`{"id", "status": "Queued|Running|Cancelling|Cancelled|Finished|Error", "results":
{"resultType": "text|error|…", "data" | "summary", "cause"}}`; `POST commands/cancel`.
A context needs a RUNNING cluster and dies with its driver (restart, termination).

Commands run as the cluster's REPL would run them (provisioner/sandbox/cluster_python.py):
Python for real in a child process, with the cluster's effective `spark.conf` and a
`dbutils.fs.ls` that lists the DLZ — on Azurite, or through the oracle — with the SAS the
effective Spark config holds. Nothing is recognised by its text: the DLZ probe of
`provisioner/reach/probe.py` is one such program. Other languages answer an error result.
Commands finish before `execute` answers, so the SDK's first status poll sees `Finished`.

Access modes (databricks-sdk-py `service/compute.py` `DataSecurityMode`; Microsoft Learn
"Access modes", "Standard compute requirements and limitations"):
- dedicated (`SINGLE_USER`, `DATA_SECURITY_MODE_DEDICATED`): only its assigned user, or a
  member of its assigned group, may run commands; anyone else's command fails with "Single-user
  check failed: user '<caller>' attempted to run a command on single-user cluster <id>, but the
  single user of this cluster is '<assigned>'";
- standard (`USER_ISOLATION`, `DATA_SECURITY_MODE_STANDARD`; `DATA_SECURITY_MODE_AUTO` is
  taken as standard, the mode Databricks may choose): cloud storage is reached only through
  Unity Catalog external locations, so `dbutils.fs.ls` of a `wasbs://` path with a SAS in the
  cluster's Spark config fails (a `SecurityException` naming the path);
- no isolation (`NONE`, unset, legacy modes): as the cluster's config allows.
The product judges the same rule before a change (provisioner/databricks/access_mode.py, its own
copy); tests/databricks/test_access_mode.py runs the probe here and holds the two equal.

Parameter errors answer as API 1.2 does, `{"error": "requirement failed: missing <field>"}`
with no `error_code` (databricks-sdk-py `tests/integration/test_commands.py`
`test_error_unmarshall`: "requirement failed: missing contextId", `error_code is None`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provisioner.sandbox.blob import BLOB_PREFIX, DlzBackend
from provisioner.sandbox.cluster_python import WASBS_RE, error_result, run_python
from provisioner.sandbox.store import DatabricksError, SandboxStore
from provisioner.sandbox.store.identities import principal_names
from provisioner.sandbox.wire import Request
from provisioner.sandbox.workspace_common import caller

Body = dict[str, Any]
Endpoint = Callable[[str, Body], Body]

_LANGUAGES = ("python", "scala", "sql", "r")
DEDICATED_MODES = frozenset({"SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED"})
STANDARD_MODES = frozenset({"USER_ISOLATION", "DATA_SECURITY_MODE_STANDARD", "DATA_SECURITY_MODE_AUTO"})
_NAME_RE = re.compile(r"<Name>([^<]*)</Name>")
_LENGTH_RE = re.compile(r"<Content-Length>(\d+)</Content-Length>")


class LegacyApiError(DatabricksError):
    """An API 1.2 error: `{"error": message}`, no error_code."""

    legacy = True


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
            raise LegacyApiError(400, "", "requirement failed: missing command")
        if not self.store.context_cluster_running(ws, cluster_id, context_id):
            results: Body = {
                "resultType": "error",
                "summary": "The execution context is no longer available (the cluster restarted or terminated)",
                "cause": "ContextNotFound",
            }
            return {"id": self.store.add_command(ws, cluster_id, context_id, "Error", results)}
        language = str(body.get("language") or self.store.context_language(ws, cluster_id, context_id))
        results = self._run(ws, cluster_id, command, language)
        return {"id": self.store.add_command(ws, cluster_id, context_id, "Finished", results)}

    def _run(self, ws: str, cluster_id: str, command: str, language: str) -> Body:
        view = self.store.get_cluster(ws, cluster_id) or {}
        mode = str(view.get("data_security_mode") or "NONE")
        who = caller()
        assigned = view.get("single_user_name")
        if mode in DEDICATED_MODES and assigned and assigned not in principal_names(who):
            message = (
                f"Single-user check failed: user '{who['userName']}' attempted to run a command on single-user "
                f"cluster {cluster_id}, but the single user of this cluster is '{assigned}'"
            )
            return error_result("PermissionError", message)
        if language != "python":
            return error_result(
                "NotImplementedError", f"the sandbox's clusters run Python commands only, not {language}"
            )
        conf = self.store.effective_spark_conf(ws, cluster_id) or {}
        return run_python(command, conf, lambda path: self._ls(path, conf, mode))

    def _ls(self, path: str, conf: dict[str, str], mode: str) -> Body:
        """`dbutils.fs.ls(path)` on this cluster: the WASB driver with the config's SAS."""
        found = WASBS_RE.match(path)
        if found is None:
            return {"error": f"java.lang.UnsupportedOperationException: the sandbox lists wasbs:// paths only: {path}"}
        if mode in STANDARD_MODES:
            return {
                "error": "java.lang.SecurityException: Cannot access cloud storage path "
                f"{path} on standard access mode compute: use a Unity Catalog external location"
            }
        account, container = found.group("account"), found.group("container")
        sas = conf.get(f"fs.azure.sas.{container}.{account}.blob.core.windows.net")
        problem = self.dlz.probe(account, container, sas)
        if problem is not None or sas is None:
            return {"error": problem}
        prefix = (found.group("path") or "/").lstrip("/")
        query = f"restype=container&comp=list&prefix={prefix}&{sas}" if prefix else f"restype=container&comp=list&{sas}"
        answer = self.dlz.forward(Request("GET", f"{BLOB_PREFIX}{account}/{container}", {}, {}, b"", raw_query=query))
        text = answer.body.decode("utf-8", "replace")
        names, sizes = _NAME_RE.findall(text), [int(n) for n in _LENGTH_RE.findall(text)]
        root = f"wasbs://{container}@{account}.blob.core.windows.net/"
        files = [[root + name, name.rsplit("/", 1)[-1], size, 0] for name, size in zip(names, sizes, strict=False)]
        return {"files": files}

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
        raise LegacyApiError(400, "", f"requirement failed: missing {name}")
    return value
