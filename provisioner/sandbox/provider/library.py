"""`databricks_library`: one library on one cluster, as terraform-provider-databricks
`clusters/resource_library.go`:
- id `<cluster_id>/<library type>:<value>` (`pypi:requests==2.32.3`, `whl:/Volumes/…`);
  everything forces a new resource;
- create: the cluster is started if it is terminated (`clusters.StartClusterAndGetInfo`),
  `libraries/install`, then wait until the library is installed (`WaitForLibrariesInstalledSdk`);
- read: `libraries/cluster-status`; a library no longer listed leaves the state;
- delete: `libraries/uninstall` (takes effect when the cluster restarts, as for real).
"""

from __future__ import annotations

import os
import time
from typing import Any

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, State
from tf.schema import Schema

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import reports_errors
from provisioner.sandbox.provider.scoped import ReplacedOnChange
from provisioner.sandbox.provider.snapshot import resource_schema
from provisioner.sandbox.provider.structs import to_api

KINDS = ("jar", "egg", "whl", "requirements", "pypi", "maven", "cran")
INSTALL_TIMEOUT = 30 * 60.0


def library_spec(state: State) -> dict[str, Any]:
    """The Libraries API's `Library` object for a library's configuration."""
    schema = resource_schema("databricks_library")
    body = to_api(schema, state, skip=("id", "cluster_id", "provider_config"))
    # SDKv2 lists of max one element as blocks; the API has one object.
    return {k: (v[0] if isinstance(v, list) and v and isinstance(v[0], dict) else v) for k, v in body.items()}


def library_id(library: dict[str, Any]) -> str:
    """`libraries.Library.String()`: `<type>:<value>` with the package or path."""
    for kind in KINDS:
        value = library.get(kind)
        if isinstance(value, dict):
            return f"{kind}:{value.get('package') or value.get('coordinates')}"
        if value:
            return f"{kind}:{value}"
    return "unknown"


def wait_installed(client: Any, cluster_id: str, libraries: list[dict[str, Any]], poll: float) -> None:
    """Until every library is INSTALLED; FAILED raises (`WaitForLibrariesInstalledSdk`)."""
    deadline = time.monotonic() + INSTALL_TIMEOUT
    wanted = [library_id(x) for x in libraries]
    while True:
        answer = client.api("GET", "/api/2.0/libraries/cluster-status", query={"cluster_id": cluster_id})
        statuses = {library_id(s["library"]): s for s in answer.get("library_statuses") or []}
        failed = [w for w in wanted if statuses.get(w, {}).get("status") == "FAILED"]
        if failed:
            raise RuntimeError(f"library {failed[0]} failed to install on cluster {cluster_id}")
        if all(statuses.get(w, {}).get("status") == "INSTALLED" for w in wanted) or time.monotonic() > deadline:
            return
        time.sleep(poll)


def poll_seconds() -> float:
    """How often a wait polls: the real provider every 10 s; sandbox clusters start in well under a second."""
    return 0.2 if os.environ.get("PROVISION_SANDBOX_HOSTS") else 10.0


class Library(ReplacedOnChange):
    @classmethod
    def get_name(cls) -> str:
        return "library"

    @classmethod
    def get_schema(cls) -> Schema:
        names = [a.name for a in resource_schema("databricks_library").attributes if a.name != "id"]
        return resource_schema("databricks_library", force_new=names)

    @reports_errors("cannot create library")
    def create(self, ctx: CreateContext, planned: State) -> State | None:
        client = self.provider.client()
        cluster_id = planned["cluster_id"]
        if client.get_cluster(cluster_id).get("state") in ("TERMINATED", "TERMINATING"):
            client.api("POST", "/api/2.1/clusters/start", body={"cluster_id": cluster_id})
            client.wait_for_state(cluster_id, {"RUNNING"}, INSTALL_TIMEOUT, poll_seconds())
        library = library_spec(planned)
        client.api("POST", "/api/2.0/libraries/install", body={"cluster_id": cluster_id, "libraries": [library]})
        wait_installed(client, cluster_id, [library], poll_seconds())
        return {**planned, "id": f"{cluster_id}/{library_id(library)}"}

    @reports_errors("cannot read library")
    def read(self, ctx: ReadContext, current: State) -> State | None:
        cluster_id, _, wanted = str(current["id"]).partition("/")
        try:
            answer = self.provider.client().api(
                "GET", "/api/2.0/libraries/cluster-status", query={"cluster_id": cluster_id}
            )
        except ApiError as exc:
            if exc.not_found or exc.error_code == "INVALID_PARAMETER_VALUE":
                return None  # the cluster is gone
            raise
        listed = {
            library_id(s["library"])
            for s in answer.get("library_statuses") or []
            if s["status"] != "UNINSTALL_ON_RESTART"
        }
        return current if wanted in listed else None

    @reports_errors("cannot delete library")
    def delete(self, ctx: DeleteContext, current: State) -> None:
        try:
            self.provider.client().api(
                "POST",
                "/api/2.0/libraries/uninstall",
                body={"cluster_id": current["cluster_id"], "libraries": [library_spec(current)]},
            )
        except ApiError as exc:
            if not (exc.not_found or exc.error_code == "INVALID_PARAMETER_VALUE"):
                raise

    @reports_errors("cannot import library")
    def import_(self, ctx: ImportContext, id: str) -> State | None:
        ctx.diagnostics.add_error("cannot import library", "databricks_library does not support import")
        return None
