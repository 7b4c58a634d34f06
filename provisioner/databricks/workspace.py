"""The Databricks workspace, through the official SDK (`databricks-sdk`).

`WorkspaceClient` is a small facade over databricks-sdk's services (`sdk.Workspace`): the calls the
tool makes (clusters, secrets, permissions, identity; the sandbox's stand-in provider has its own
client, provisioner/sandbox/provider/client.py),
with dict-shaped results and one error type, `WorkspaceError`, which keeps the SDK's typed
error (`databricks.sdk.errors`: NotFound, PermissionDenied, InvalidState, BadRequest …) so the
code that decides asks its type, never a code or a message. The SDK maps answers to types
itself, including the Clusters API's 400 "Cluster … does not exist" on `clusters/get`
(`errors/overrides.py`: ResourceDoesNotExist, a NotFound).
Authentication, retries of 429/503 with `Retry-After` (within `retry_timeout_seconds`) and
pagination are the SDK's (`databricks/sdk/_base_client.py`, `service/compute.py`
`ClustersAPI.list`), so our calls behave as the Databricks CLI and the Terraform
provider's Go SDK do. How the identity is chosen lives in `identity.py`.

Error messages are masked: a workspace can echo request content, and the SDK's messages
can carry URLs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from provisioner.clock import Clock, RealClock
from provisioner.secret import Secret, mask

if TYPE_CHECKING:
    from databricks.sdk.errors.base import DatabricksError

    from provisioner.databricks.sdk import Workspace

# States a cluster does not leave by itself: waiting for RUNNING stops there.
_TERMINAL = frozenset({"TERMINATED", "ERROR"})


class WorkspaceError(Exception):
    """A failed workspace call: HTTP status (0 = no answer), Databricks error_code and message
    (both for people: `said`), and `error`, the SDK's typed error (None: no answer, or a
    refused login) that the predicates below ask."""

    def __init__(self, status: int, error_code: str, message: str, error: DatabricksError | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.message = mask(message)
        self.error = error
        super().__init__(f"Databricks API error {status} {error_code}: {self.message}")

    @property
    def not_found(self) -> bool:
        """The resource is gone: NotFound (its ResourceDoesNotExist too)."""
        kinds = _kinds(self.error)
        return kinds is not None and isinstance(self.error, kinds.NotFound)

    @property
    def permission_denied(self) -> bool:
        kinds = _kinds(self.error)
        return kinds is not None and isinstance(self.error, kinds.PermissionDenied)

    @property
    def invalid_state(self) -> bool:
        """InvalidState: the resource is not in a state for this call (a cluster restarting, purged)."""
        kinds = _kinds(self.error)
        return kinds is not None and isinstance(self.error, kinds.InvalidState)

    @property
    def bad_request(self) -> bool:
        """A plain BadRequest (400 BAD_REQUEST), not one of its specific kinds (InvalidState,
        InvalidParameterValue)."""
        kinds = _kinds(self.error)
        return kinds is not None and type(self.error) is kinds.BadRequest


def _kinds(error: DatabricksError | None) -> ModuleType | None:
    """The SDK's error classes (`databricks.sdk.errors.platform`), when there is an SDK error."""
    if error is None:
        return None
    # Here, not at the top: databricks.sdk.errors loads all of databricks-sdk (~0.25 s), which a
    # command's start keeps off its path; an SDK error exists only once the SDK is loaded.
    from databricks.sdk.errors import platform

    return platform


def normalize_host(host: str) -> str:
    """`adb-1.2.azuredatabricks.net/` -> `https://adb-1.2.azuredatabricks.net` (as the real provider)."""
    host = host.strip().rstrip("/")
    return host if "://" in host else "https://" + host


def _status_of(exc: Exception) -> int:
    from databricks.sdk.errors import platform

    for status, cls in platform.STATUS_CODE_MAPPING.items():
        if isinstance(exc, cls):
            return int(status)
    return 0


@contextmanager
def translated(what: str) -> Iterator[None]:
    """SDK and transport errors → WorkspaceError with a masked one-line message."""
    from databricks.sdk.errors.base import DatabricksError

    try:
        yield
    except DatabricksError as exc:
        status = _status_of(exc)
        code = exc.error_code or type(exc).__name__.upper()
        raise WorkspaceError(status, str(code), f"{what}: {exc}", _typed_at_root(what, status, exc)) from None
    except (TimeoutError, OSError) as exc:
        raise WorkspaceError(0, "CONNECTION_ERROR", f"{what}: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        # The SDK's credential providers signal a refused login (e.g. OAuth `invalid_client`) so.
        raise WorkspaceError(401, "AUTH_ERROR", f"{what}: {exc}") from None


def _typed_at_root(what: str, status: int, exc: DatabricksError) -> DatabricksError:
    """The SDK's error as the SDK types it for this API path (`what`: "METHOD /api/…").

    The SDK's overrides (`errors/overrides.py`, e.g. the Clusters API's 400 "Cluster … does not
    exist" on `clusters/get` → ResourceDoesNotExist) are anchored at the URL's path, `^/api/…`:
    a workspace URL with a path of its own (a proxy, the sandbox's `/ws/<key>`) hides them. The
    SDK's own table is applied here to the API path, so every workspace URL types alike; at a
    host's root this finds what the SDK found.
    """
    from databricks.sdk.errors import overrides  # loaded with the SDK that raised `exc`

    method, _, path = what.partition(" ")
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


class WorkspaceClient:
    """Clusters, secrets, permissions and identity of one workspace."""

    def __init__(self, sdk: Workspace, host: str, clock: Clock | None = None) -> None:
        self.sdk = sdk
        self.host = normalize_host(host)
        self.clock = clock or RealClock()  # what `wait_for_state` polls on (the run's)

    def close(self) -> None:
        pass  # the SDK's session lives as long as the client object

    def __enter__(self) -> WorkspaceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with translated(f"{method} {path}"):
            answer = self.sdk.api_client.do(method, path, query=query, body=body)
        return answer if isinstance(answer, dict) else {}

    # -- identity --------------------------------------------------------------------

    def current_user(self) -> dict[str, Any]:
        """SCIM `Me`: userName (e-mail, or a service principal's application id), displayName, groups."""
        with translated("GET /api/2.0/preview/scim/v2/Me"):
            return self.sdk.current_user.me().as_dict()

    def create_token(self, comment: str, lifetime_seconds: int | None = None) -> Secret:
        """A PAT for the current identity (AEP's base connection authenticates with one)."""
        with translated("POST /api/2.0/token/create"):
            created = self.sdk.tokens.create(comment=comment, lifetime_seconds=lifetime_seconds)
        if not created.token_value:
            raise WorkspaceError(0, "NO_TOKEN", "POST /api/2.0/token/create answered without a token")
        return Secret(created.token_value)

    def workspace_conf(self, *keys: str) -> dict[str, Any]:
        """`GET /api/2.0/workspace-conf?keys=…` (admins): the settings asked for, null when unset."""
        return self._do("GET", "/api/2.0/workspace-conf", query={"keys": ",".join(keys)})

    # -- clusters --------------------------------------------------------------------

    def create_cluster(self, spec: dict[str, Any]) -> str:
        return str(self._do("POST", "/api/2.1/clusters/create", body=spec)["cluster_id"])

    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        return self._do("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id})

    def edit_cluster(self, cluster_id: str, spec: dict[str, Any]) -> None:
        """Replace the whole spec; a RUNNING cluster restarts, a TERMINATED one stays so."""
        self._do("POST", "/api/2.1/clusters/edit", body={**spec, "cluster_id": cluster_id})

    def start_cluster(self, cluster_id: str) -> None:
        with translated("POST /api/2.1/clusters/start"):
            self.sdk.clusters.start(cluster_id)  # returns a waiter we do not use: we poll ourselves

    def restart_cluster(self, cluster_id: str) -> None:
        with translated("POST /api/2.1/clusters/restart"):
            self.sdk.clusters.restart(cluster_id)

    def delete_cluster(self, cluster_id: str) -> None:
        """Terminate (the cluster and its config stay, TERMINATED)."""
        with translated("POST /api/2.1/clusters/delete"):
            self.sdk.clusters.delete(cluster_id)

    def permanent_delete_cluster(self, cluster_id: str) -> None:
        with translated("POST /api/2.1/clusters/permanent-delete"):
            self.sdk.clusters.permanent_delete(cluster_id)

    def resize_cluster(
        self, cluster_id: str, *, num_workers: int | None = None, autoscale: dict[str, int] | None = None
    ) -> None:
        """Change the size of a RUNNING cluster without a restart."""
        body: dict[str, Any] = {"cluster_id": cluster_id}
        if autoscale is not None:
            body["autoscale"] = autoscale
        else:
            body["num_workers"] = num_workers or 0
        self._do("POST", "/api/2.1/clusters/resize", body=body)

    def pin_cluster(self, cluster_id: str) -> None:
        with translated("POST /api/2.1/clusters/pin"):
            self.sdk.clusters.pin(cluster_id)

    def list_clusters(self, *, pinned_only: bool = False, states: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every cluster the identity can see, following `next_page_token` (the SDK's iterator).

        Each item is a whole `ClusterDetails`, as `clusters/get` answers it. `pinned_only` with
        page size 100 is one call: a workspace pins at most 100 clusters.
        """
        from databricks.sdk.service.compute import ListClustersFilterBy, State

        wanted = [State(s) for s in states]
        filter_by = None
        if pinned_only or wanted:
            filter_by = ListClustersFilterBy(is_pinned=True if pinned_only else None, cluster_states=wanted or None)
        with translated("GET /api/2.1/clusters/list"):
            return [c.as_dict() for c in self.sdk.clusters.list(filter_by=filter_by, page_size=100)]

    def wait_for_state(
        self, cluster_id: str, states: Iterable[str], timeout: float = 1200.0, poll: float = 10.0
    ) -> dict[str, Any]:
        """Poll until the cluster is in one of `states` and return it.

        Also returns early on TERMINATED/ERROR (a cluster does not leave those by itself),
        so the caller must check `["state"]`. Raises TimeoutError after `timeout` seconds.
        """
        wanted = frozenset(states)
        deadline = self.clock.monotonic() + timeout
        while True:
            info = self.get_cluster(cluster_id)
            state = info.get("state", "")
            if state in wanted or state in _TERMINAL:
                return info
            if self.clock.monotonic() >= deadline:
                raise TimeoutError(f"cluster {cluster_id} still {state} after {timeout:.0f}s")
            self.clock.sleep(poll)

    def cluster_permission_levels(self, cluster_id: str) -> dict[str, str]:
        """Principal or group name → highest level on the cluster (reading it needs CAN_MANAGE)."""
        with translated(f"GET /api/2.0/permissions/clusters/{cluster_id}"):
            acl = self.sdk.permissions.get("clusters", cluster_id)
        levels: dict[str, str] = {}
        for entry in acl.access_control_list or []:
            name = entry.user_name or entry.service_principal_name or entry.group_name or ""
            for permission in entry.all_permissions or []:
                if permission.permission_level is not None:
                    levels[name] = _higher(levels.get(name), permission.permission_level.value)
        return levels

    # -- secrets ---------------------------------------------------------------------

    def create_scope(
        self, scope: str, *, initial_manage_principal: str | None = None, backend_type: str | None = None
    ) -> None:
        body: dict[str, Any] = {"scope": scope}
        if initial_manage_principal:
            body["initial_manage_principal"] = initial_manage_principal
        if backend_type:
            body["scope_backend_type"] = backend_type
        self._do("POST", "/api/2.0/secrets/scopes/create", body=body)

    def delete_scope(self, scope: str) -> None:
        with translated("POST /api/2.0/secrets/scopes/delete"):
            self.sdk.secrets.delete_scope(scope)

    def list_scopes(self) -> list[dict[str, Any]]:
        with translated("GET /api/2.0/secrets/scopes/list"):
            return [s.as_dict() for s in self.sdk.secrets.list_scopes()]

    def put_secret(self, scope: str, key: str, value: Secret) -> None:
        """Create or overwrite (atomically: the old value is readable until the new one is)."""
        with translated("POST /api/2.0/secrets/put"):
            self.sdk.secrets.put_secret(scope, key, string_value=value.reveal())

    def delete_secret(self, scope: str, key: str) -> None:
        with translated("POST /api/2.0/secrets/delete"):
            self.sdk.secrets.delete_secret(scope, key)

    def list_secrets(self, scope: str) -> list[dict[str, Any]]:
        """Keys with `last_updated_timestamp`; values are never returned."""
        with translated("GET /api/2.0/secrets/list"):
            return [s.as_dict() for s in self.sdk.secrets.list_secrets(scope)]

    # -- cluster policies ------------------------------------------------------------

    def get_cluster_policy(self, policy_id: str) -> dict[str, Any]:
        """`policy_id`, `name` and `definition` (a JSON string of attribute path -> rule)."""
        return self._do("GET", "/api/2.0/policies/clusters/get", query={"policy_id": policy_id})

    def spark_versions(self) -> list[dict[str, Any]]:
        """The runtimes the workspace offers (`key`, `name`; SDK `ClustersAPI.spark_versions`)."""
        versions = self._do("GET", "/api/2.0/clusters/spark-versions").get("versions") or []
        return [v for v in versions if isinstance(v, dict)]

    # -- secret scope ACLs (databricks_secret_acl; the ACL API needs MANAGE) -----------

    def put_scope_acl(self, scope: str, principal: str, permission: str) -> None:
        from databricks.sdk.service.workspace import AclPermission

        with translated("POST /api/2.0/secrets/acls/put"):
            self.sdk.secrets.put_acl(scope, principal, AclPermission(permission))

    def scope_acls(self, scope: str) -> dict[str, str]:
        """Principal → READ/WRITE/MANAGE of every ACL entry on the scope."""
        with translated("GET /api/2.0/secrets/acls/list"):
            return {
                a.principal: a.permission.value
                for a in self.sdk.secrets.list_acls(scope)
                if a.principal and a.permission is not None
            }

    def delete_scope_acl(self, scope: str, principal: str) -> None:
        with translated("POST /api/2.0/secrets/acls/delete"):
            self.sdk.secrets.delete_acl(scope, principal)

    def principal_groups(self, name: str) -> tuple[str, ...] | None:
        """The groups of a user (e-mail) or service principal (application id), as SCIM lists
        them to a workspace admin; None when the answer carries no `groups` (non-admin callers
        see names and ids only) or no such principal. An admin's answer omits an empty list too:
        callers that know they are admin read None as "none"."""
        if "@" in name:
            with translated("GET /api/2.0/preview/scim/v2/Users"):
                users = self.sdk.users.list(filter=f'userName eq "{name}"', attributes="id,userName,groups")
                found = [u.groups for u in users]
        else:
            with translated("GET /api/2.0/preview/scim/v2/ServicePrincipals"):
                sps = self.sdk.service_principals.list(
                    filter=f'applicationId eq "{name}"', attributes="id,applicationId,groups"
                )
                found = [s.groups for s in sps]
        if not found or not found[0]:
            return None  # the SDK reads an absent `groups` as []
        return tuple(g.display for g in found[0] if g.display)


_LEVEL_ORDER = ("CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE")


def _higher(a: str | None, b: str) -> str:
    rank = {lvl: i for i, lvl in enumerate(_LEVEL_ORDER)}
    if a is None:
        return b
    return a if rank.get(a, -1) >= rank.get(b, -1) else b


def said(exc: WorkspaceError) -> str:
    """What the workspace answered, status and code included (a 429 must read as one)."""
    return f"HTTP {exc.status} {exc.error_code}: {exc.message}" if exc.status else exc.message
