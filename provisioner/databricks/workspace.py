"""The Databricks workspace REST client (clusters and secrets).

Used by real-mode commands (status, adopt, connect) and by the sandbox's stand-in
Terraform provider, so both speak to a workspace the same way. Every host goes through
`resolve_host`, which applies the sandbox "hosts file" (`PROVISION_SANDBOX_HOSTS`, see
docs/sandbox.md): in sandbox mode a workspace host that is not in the map is an error,
never a real network call.

Errors are `WorkspaceError(status, error_code, message)`. The token only ever travels in
the Authorization header and messages are masked, so an error never carries it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from provisioner.secret import Secret, mask

SANDBOX_HOSTS_ENV = "PROVISION_SANDBOX_HOSTS"

# (connect, read) seconds. Cluster calls answer quickly; waiting happens by polling.
TIMEOUT = (10.0, 60.0)

# Calls that must not be repeated after a 5xx, because the first one may have taken
# effect (a second cluster, or RESOURCE_ALREADY_EXISTS). 429/503 mean "not processed",
# so those are still retried. Everything else here is idempotent (edit sends the full spec).
_NOT_IDEMPOTENT = ("/api/2.1/clusters/create", "/api/2.0/secrets/scopes/create")

# States a cluster does not leave by itself: waiting for RUNNING stops there.
_TERMINAL = frozenset({"TERMINATED", "ERROR"})


class WorkspaceError(Exception):
    """A failed workspace call: HTTP status (0 = no answer), Databricks error_code, message."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.message = mask(message)
        super().__init__(f"Databricks API error {status} {error_code}: {self.message}")

    @property
    def not_found(self) -> bool:
        """The resource is gone (404, or the 400 "does not exist" the Clusters API uses)."""
        return (
            self.status == 404
            or self.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
            or "does not exist" in self.message.lower()
        )


def normalize_host(host: str) -> str:
    """`adb-1.2.azuredatabricks.net/` -> `https://adb-1.2.azuredatabricks.net` (as the real provider)."""
    host = host.strip().rstrip("/")
    return host if "://" in host else "https://" + host


def resolve_host(host: str) -> str:
    """The base URL to call for a configured workspace host.

    Identity (normalised) unless PROVISION_SANDBOX_HOSTS is set; then the host must be in it.
    """
    host = normalize_host(host)
    raw = os.environ.get(SANDBOX_HOSTS_ENV)
    if not raw:
        return host
    mapping: dict[str, str] = {normalize_host(k): v.rstrip("/") for k, v in json.loads(raw).items()}
    if host not in mapping:
        raise WorkspaceError(0, "SANDBOX_UNKNOWN_HOST", f"{host} is not a sandbox workspace (known: {sorted(mapping)})")
    return mapping[host]


# A workspace answering 429 says how long to wait; a huge Retry-After must not stall a
# command for hours: each wait is capped, and the retries are bounded (total=4).
MAX_RETRY_AFTER = 30.0


class _BoundedRetry(Retry):
    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)


def _retry(statuses: Iterable[int]) -> Retry:
    return _BoundedRetry(
        total=4,
        connect=2,
        read=0,  # a read timeout may hide a call that took effect
        status_forcelist=frozenset(statuses),
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer becomes a WorkspaceError with its body
    )


class WorkspaceClient:
    """Clusters and secrets of one workspace, authenticated with a PAT."""

    def __init__(self, host: str, token: Secret, *, timeout: tuple[float, float] = TIMEOUT) -> None:
        self.host = normalize_host(host)
        self.base_url = resolve_host(host)
        self._token = token
        self._timeout = timeout
        self._session = requests.Session()
        self._session.mount(self.base_url, HTTPAdapter(max_retries=_retry((429, 500, 502, 503, 504))))
        # requests picks the longest mounted prefix, so these calls get the cautious policy.
        for path in _NOT_IDEMPOTENT:
            self._session.mount(self.base_url + path, HTTPAdapter(max_retries=_retry((429, 503))))

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> WorkspaceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        try:
            resp = self._session.request(
                method, self.base_url + path, params=params, json=body, headers=headers, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise WorkspaceError(0, "CONNECTION_ERROR", f"{method} {path}: {type(exc).__name__}: {exc}") from None
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = {"message": resp.text[:300]}
        if not isinstance(data, dict):
            data = {"value": data}
        if resp.status_code >= 400:
            raise WorkspaceError(
                resp.status_code,
                str(data.get("error_code") or data.get("error") or f"HTTP_{resp.status_code}"),
                f"{method} {path}: {data.get('message') or resp.reason}",
            )
        return data

    # -- clusters --------------------------------------------------------------------

    def create_cluster(self, spec: dict[str, Any]) -> str:
        return str(self._call("POST", "/api/2.1/clusters/create", body=spec)["cluster_id"])

    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        return self._call("GET", "/api/2.1/clusters/get", params={"cluster_id": cluster_id})

    def edit_cluster(self, cluster_id: str, spec: dict[str, Any]) -> None:
        """Replace the whole spec; a RUNNING cluster restarts, a TERMINATED one stays so."""
        self._call("POST", "/api/2.1/clusters/edit", body={**spec, "cluster_id": cluster_id})

    def start_cluster(self, cluster_id: str) -> None:
        self._call("POST", "/api/2.1/clusters/start", body={"cluster_id": cluster_id})

    def restart_cluster(self, cluster_id: str) -> None:
        self._call("POST", "/api/2.1/clusters/restart", body={"cluster_id": cluster_id})

    def delete_cluster(self, cluster_id: str) -> None:
        """Terminate (the cluster and its config stay, TERMINATED)."""
        self._call("POST", "/api/2.1/clusters/delete", body={"cluster_id": cluster_id})

    def permanent_delete_cluster(self, cluster_id: str) -> None:
        self._call("POST", "/api/2.1/clusters/permanent-delete", body={"cluster_id": cluster_id})

    def resize_cluster(
        self, cluster_id: str, *, num_workers: int | None = None, autoscale: dict[str, int] | None = None
    ) -> None:
        """Change the size of a RUNNING cluster without a restart."""
        body: dict[str, Any] = {"cluster_id": cluster_id}
        if autoscale is not None:
            body["autoscale"] = autoscale
        else:
            body["num_workers"] = num_workers or 0
        self._call("POST", "/api/2.1/clusters/resize", body=body)

    def pin_cluster(self, cluster_id: str) -> None:
        self._call("POST", "/api/2.1/clusters/pin", body={"cluster_id": cluster_id})

    def unpin_cluster(self, cluster_id: str) -> None:
        self._call("POST", "/api/2.1/clusters/unpin", body={"cluster_id": cluster_id})

    def list_clusters(self, *, pinned_only: bool = False) -> list[dict[str, Any]]:
        """Every cluster, following `next_page_token` (clusters/list 2.1 is paginated)."""
        params: dict[str, str] = {"page_size": "100"}
        if pinned_only:
            params["filter_by.is_pinned"] = "true"
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            page = self._call("GET", "/api/2.1/clusters/list", params=params)
            out.extend(page.get("clusters", []))
            token = page.get("next_page_token")
            if not token or token in seen:  # a repeated token would loop forever
                return out
            seen.add(token)
            params["page_token"] = str(token)

    def wait_for_state(
        self, cluster_id: str, states: Iterable[str], timeout: float = 1200.0, poll: float = 10.0
    ) -> dict[str, Any]:
        """Poll until the cluster is in one of `states` and return it.

        Also returns early on TERMINATED/ERROR (a cluster does not leave those by itself),
        so the caller must check `["state"]`. Raises TimeoutError after `timeout` seconds.
        """
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

    # -- secrets ---------------------------------------------------------------------

    def create_scope(
        self, scope: str, *, initial_manage_principal: str | None = None, backend_type: str | None = None
    ) -> None:
        body: dict[str, Any] = {"scope": scope}
        if initial_manage_principal:
            body["initial_manage_principal"] = initial_manage_principal
        if backend_type:
            body["scope_backend_type"] = backend_type
        self._call("POST", "/api/2.0/secrets/scopes/create", body=body)

    def delete_scope(self, scope: str) -> None:
        self._call("POST", "/api/2.0/secrets/scopes/delete", body={"scope": scope})

    def list_scopes(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/2.0/secrets/scopes/list").get("scopes", []))

    def put_secret(self, scope: str, key: str, value: Secret) -> None:
        self._call("POST", "/api/2.0/secrets/put", body={"scope": scope, "key": key, "string_value": value.reveal()})

    def delete_secret(self, scope: str, key: str) -> None:
        self._call("POST", "/api/2.0/secrets/delete", body={"scope": scope, "key": key})

    def list_secrets(self, scope: str) -> list[dict[str, Any]]:
        """Keys with `last_updated_timestamp`; values are never returned."""
        return list(self._call("GET", "/api/2.0/secrets/list", params={"scope": scope}).get("secrets", []))

    # -- production (cluster policies, pinning; issue 15) ---------------------------------

    def get_cluster_policy(self, policy_id: str) -> dict[str, Any]:
        """`policy_id`, `name` and `definition` (a JSON string of attribute path -> rule)."""
        return self._call("GET", "/api/2.0/policies/clusters/get", params={"policy_id": policy_id})

    # -- lifecycle: secret scope ACLs (databricks_secret_acl), the caller's user name ---------

    def put_scope_acl(self, scope: str, principal: str, permission: str) -> None:
        self._call(
            "POST", "/api/2.0/secrets/acls/put", body={"scope": scope, "principal": principal, "permission": permission}
        )

    def get_scope_acl(self, scope: str, principal: str) -> str | None:
        """The principal's own ACL entry on the scope (not what it gets through a group), or None."""
        try:
            found = self._call("GET", "/api/2.0/secrets/acls/get", params={"scope": scope, "principal": principal})
        except WorkspaceError as exc:
            if exc.not_found:  # no entry for the principal, or no such scope: nothing granted here
                return None
            raise
        permission = found.get("permission")
        return str(permission) if permission else None

    def scope_acls(self, scope: str) -> dict[str, str]:
        """principal -> permission of every ACL entry on the scope (needs MANAGE)."""
        items = self._call("GET", "/api/2.0/secrets/acls/list", params={"scope": scope}).get("items", [])
        return {str(i.get("principal")): str(i.get("permission")) for i in items}

    def delete_scope_acl(self, scope: str, principal: str) -> None:
        self._call("POST", "/api/2.0/secrets/acls/delete", body={"scope": scope, "principal": principal})

    def current_user_name(self) -> str:
        return str(self._call("GET", "/api/2.0/preview/scim/v2/Me").get("userName") or "")
