"""What the workspace says about a cluster, read the same way everywhere: its last start,
whether an error means it is gone, why it terminated, when the SAS secret was written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError, said
from provisioner.errors import ProvisionError


def secret_updated_ms(client: WorkspaceClient, scope: str, key: str) -> int | None:
    """When the secret was last written (ms), or None if it (or its scope) does not exist.

    Any other failure is an error: guessing "no secret" would skip restarts and leave
    clusters on a revoked token.
    """
    try:
        secrets = client.list_secrets(scope)
    except WorkspaceError as exc:
        if exc.not_found:
            return None
        raise ProvisionError(f"cannot list the secrets of scope {scope} ({said(exc)})") from None
    for item in secrets:
        if item.get("key") == key:
            return int(item.get("last_updated_timestamp") or 0)
    return None


def last_start_ms(info: Mapping[str, Any]) -> int:
    return int(info.get("last_restarted_time") or info.get("start_time") or 0)


def cluster_gone(exc: WorkspaceError) -> bool:
    """`clusters/get` of a cluster that no longer exists: missing, or INVALID_STATE once purged.

    The real provider treats both as gone (`clusters/clusters_api.go` `wrapMissingClusterError`).
    """
    return exc.not_found or exc.invalid_state


def termination_text(info: Mapping[str, Any]) -> str:
    """`CODE (TYPE): k=v, …` from a cluster's termination_reason, else its state message."""
    reason = info.get("termination_reason") or {}
    code = reason.get("code")
    if not code:
        return str(info.get("state_message") or "no termination reason given")
    text = f"{code} ({reason['type']})" if reason.get("type") else str(code)
    params = reason.get("parameters") or {}
    if params:
        text += ": " + ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return text
