"""How the stand-in provider calls a workspace: databricks-sdk's `ApiClient`, with its own error type.

The real provider calls the workspace through databricks-sdk-go (`WorkspaceClient`, its
`apierr.APIError`, typed by `apierr.IsMissing` and the like). The stand-in does the same with
databricks-sdk-py, the library that mirrors it: authentication, retries of 429/503 with
`Retry-After` and the mapping of answers to typed errors (`databricks/sdk/errors/`) are the
SDK's. It does not use the tool's own workspace client, so a bug there cannot agree with
itself here (issue 24: the emulator stands on its own).

Every call is the REST call the Go SDK's service makes (the paths and bodies of
`service/compute`, `service/workspace`, `service/iam`); results stay the API's JSON.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from provisioner.secret import Secret, mask

if TYPE_CHECKING:
    from databricks.sdk.core import ApiClient
    from databricks.sdk.errors.base import DatabricksError

# States a cluster does not leave by itself: waiting for RUNNING stops there (the Go SDK's
# `WaitGetClusterRunning` fails on TERMINATED and ERROR).
_TERMINAL = frozenset({"TERMINATED", "ERROR"})

_load_lock = threading.Lock()


def load_sdk() -> None:
    """Make `databricks.sdk.<module>` importable without running the package's `__init__`.

    That `__init__` imports the services of every Databricks product (over a second of CPU),
    and Terraform starts the provider several times per plan; the stand-in needs `config`,
    `core`, `errors` and, for two data sources, `mixins.compute`. A package-level name asked
    for later (`from databricks.sdk import X`) still finishes the real import then.
    """
    with _load_lock:
        if "databricks.sdk" in sys.modules:
            return
        spec = importlib.util.find_spec("databricks.sdk")
        if spec is None or spec.loader is None:
            raise ImportError("databricks-sdk is not installed (pip install databricks-sdk)")
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def complete(name: str) -> Any:
            if not name.startswith("__") and importlib.util.find_spec(f"databricks.sdk.{name}") is not None:
                return importlib.import_module(f"databricks.sdk.{name}")
            if name.startswith("__"):
                raise AttributeError(name)
            with _load_lock:
                if "__getattr__" in package.__dict__:
                    del package.__dict__["__getattr__"]
                    loader.exec_module(package)
            if name in package.__dict__:
                return package.__dict__[name]
            raise AttributeError(f"module 'databricks.sdk' has no attribute {name!r}")

        package.__dict__["__getattr__"] = complete
        sys.modules["databricks.sdk"] = package


class ApiError(Exception):
    """A failed call: HTTP status (0 = no answer), error_code and message (masked), and `error`,
    the SDK's typed error (None: no answer, or a refused login)."""

    def __init__(self, status: int, error_code: str, message: str, error: DatabricksError | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.message = mask(message)
        self.error = error
        super().__init__(f"Databricks API error {status} {error_code}: {self.message}")

    @property
    def not_found(self) -> bool:
        """The Go SDK's `apierr.IsMissing`: a NotFound (ResourceDoesNotExist included)."""
        if self.error is None:
            return False
        from databricks.sdk.errors.platform import NotFound

        return isinstance(self.error, NotFound)


def _status_of(exc: Exception) -> int:
    from databricks.sdk.errors import platform

    for status, cls in platform.STATUS_CODE_MAPPING.items():
        if isinstance(exc, cls):
            return int(status)
    return 0


def _typed_at_root(method: str, path: str, status: int, exc: DatabricksError) -> DatabricksError:
    """The SDK's error as the SDK types it for the API path (not the URL's).

    The SDK's overrides (`errors/overrides.py`, e.g. the Clusters API's 400 "Cluster … does not
    exist" → ResourceDoesNotExist, as the Go SDK's `apierr/errors.go` overrides) match the URL's
    path from `^/api/`: the sandbox's `/ws/<key>` prefix hides them, so they are applied here."""
    from databricks.sdk.errors import overrides

    message = str(exc)
    for rule in overrides._ALL_OVERRIDES:
        if (
            rule.verb == method
            and rule.path_regex.match(path)
            and (rule.status_code_matcher is None or rule.status_code_matcher.match(str(status)))
            and (rule.error_code_matcher is None or rule.error_code_matcher.match(exc.error_code or ""))
            and (rule.message_matcher is None or rule.message_matcher.match(message))
        ):
            typed: DatabricksError = rule.custom_error(message, error_code=exc.error_code)
            return typed
    return exc


@contextmanager
def _translated(method: str, path: str) -> Iterator[None]:
    from databricks.sdk.errors.base import DatabricksError

    what = f"{method} {path}"
    try:
        yield
    except DatabricksError as exc:
        status = _status_of(exc)
        code = exc.error_code or type(exc).__name__.upper()
        raise ApiError(status, str(code), f"{what}: {exc}", _typed_at_root(method, path, status, exc)) from None
    except (TimeoutError, OSError) as exc:
        raise ApiError(0, "CONNECTION_ERROR", f"{what}: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        # The SDK's credential providers signal a refused login (e.g. OAuth `invalid_client`) so.
        raise ApiError(401, "AUTH_ERROR", f"{what}: {exc}") from None


class Client:
    """One workspace, as the provider's resources call it."""

    def __init__(self, api_client: ApiClient, host: str) -> None:
        self.api_client = api_client
        self.host = host  # the configured host (URLs in state name it, not the sandbox's address)

    def api(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with _translated(method, path):
            answer = self.api_client.do(method, path, query=query, body=body)
        return answer if isinstance(answer, dict) else {}

    # -- identity (service/iam `CurrentUser.Me`) ------------------------------------------

    def current_user(self) -> dict[str, Any]:
        return self.api("GET", "/api/2.0/preview/scim/v2/Me")

    def current_user_name(self) -> str:
        return str(self.current_user().get("userName") or "")

    # -- clusters (service/compute `Clusters`) --------------------------------------------

    def create_cluster(self, spec: dict[str, Any]) -> str:
        return str(self.api("POST", "/api/2.1/clusters/create", body=spec)["cluster_id"])

    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        return self.api("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id})

    def edit_cluster(self, cluster_id: str, spec: dict[str, Any]) -> None:
        self.api("POST", "/api/2.1/clusters/edit", body={**spec, "cluster_id": cluster_id})

    def permanent_delete_cluster(self, cluster_id: str) -> None:
        self.api("POST", "/api/2.1/clusters/permanent-delete", body={"cluster_id": cluster_id})

    def resize_cluster(
        self, cluster_id: str, *, num_workers: int | None = None, autoscale: dict[str, int] | None = None
    ) -> None:
        body: dict[str, Any] = {"cluster_id": cluster_id}
        if autoscale is not None:
            body["autoscale"] = autoscale
        else:
            body["num_workers"] = num_workers or 0
        self.api("POST", "/api/2.1/clusters/resize", body=body)

    def pin_cluster(self, cluster_id: str) -> None:
        self.api("POST", "/api/2.1/clusters/pin", body={"cluster_id": cluster_id})

    def unpin_cluster(self, cluster_id: str) -> None:
        self.api("POST", "/api/2.1/clusters/unpin", body={"cluster_id": cluster_id})

    def list_clusters(self, *, pinned_only: bool = False, states: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every listed cluster, following `next_page_token` (the SDK's `ListAll`)."""
        query: dict[str, Any] = {"page_size": 100}
        wanted = list(states)
        if pinned_only or wanted:
            filter_by: dict[str, Any] = {}
            if pinned_only:
                filter_by["is_pinned"] = True
            if wanted:
                filter_by["cluster_states"] = wanted
            query["filter_by"] = filter_by
        clusters: list[dict[str, Any]] = []
        while True:
            answer = self.api("GET", "/api/2.1/clusters/list", query=query)
            clusters.extend(c for c in answer.get("clusters") or [] if isinstance(c, dict))
            if not answer.get("next_page_token"):
                return clusters
            query["page_token"] = answer["next_page_token"]

    def wait_for_state(
        self, cluster_id: str, states: Iterable[str], timeout: float = 1200.0, poll: float = 10.0
    ) -> dict[str, Any]:
        """Poll until the cluster is in one of `states`, or TERMINATED/ERROR (the caller checks
        `["state"]`); TimeoutError after `timeout` seconds."""
        wanted = frozenset(states)
        deadline = time.monotonic() + timeout
        while True:
            info = self.get_cluster(cluster_id)
            state = info.get("state", "")
            if state in wanted or state in _TERMINAL:
                return info
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cluster {cluster_id} still {state} after {timeout:.0f}s")
            time.sleep(poll)

    # -- secrets (service/workspace `Secrets`) --------------------------------------------

    def create_scope(
        self, scope: str, *, initial_manage_principal: str | None = None, backend_type: str | None = None
    ) -> None:
        body: dict[str, Any] = {"scope": scope}
        if initial_manage_principal:
            body["initial_manage_principal"] = initial_manage_principal
        if backend_type:
            body["scope_backend_type"] = backend_type
        self.api("POST", "/api/2.0/secrets/scopes/create", body=body)

    def delete_scope(self, scope: str) -> None:
        self.api("POST", "/api/2.0/secrets/scopes/delete", body={"scope": scope})

    def list_scopes(self) -> list[dict[str, Any]]:
        return [s for s in self.api("GET", "/api/2.0/secrets/scopes/list").get("scopes") or [] if isinstance(s, dict)]

    def put_secret(self, scope: str, key: str, value: Secret) -> None:
        self.api("POST", "/api/2.0/secrets/put", body={"scope": scope, "key": key, "string_value": value.reveal()})

    def delete_secret(self, scope: str, key: str) -> None:
        self.api("POST", "/api/2.0/secrets/delete", body={"scope": scope, "key": key})

    def list_secrets(self, scope: str) -> list[dict[str, Any]]:
        answer = self.api("GET", "/api/2.0/secrets/list", query={"scope": scope})
        return [s for s in answer.get("secrets") or [] if isinstance(s, dict)]

    def put_scope_acl(self, scope: str, principal: str, permission: str) -> None:
        body = {"scope": scope, "principal": principal, "permission": permission}
        self.api("POST", "/api/2.0/secrets/acls/put", body=body)

    def get_scope_acl(self, scope: str, principal: str) -> str | None:
        """The principal's own ACL entry on the scope, or None (no entry, or no such scope)."""
        try:
            found = self.api("GET", "/api/2.0/secrets/acls/get", query={"scope": scope, "principal": principal})
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        permission = found.get("permission")
        return str(permission) if permission else None

    def delete_scope_acl(self, scope: str, principal: str) -> None:
        self.api("POST", "/api/2.0/secrets/acls/delete", body={"scope": scope, "principal": principal})
