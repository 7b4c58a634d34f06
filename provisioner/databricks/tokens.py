"""The workspace's Token API, for the PAT AEP's base connection authenticates with.

- `POST /api/2.0/token/create {comment, lifetime_seconds}` → `token_value` and `token_info`
  (`token_id`, `creation_time`, `expiry_time` in epoch ms, -1 for none); `GET /api/2.0/token/list`
  → the caller's valid tokens; `POST /api/2.0/token/delete {token_id}` revokes one, an invalid
  id answering `RESOURCE_DOES_NOT_EXIST` (databricks-sdk-py `databricks/sdk/service/settings.py`
  `TokensAPI`; provider `tokens/resource_token.go`). A token is minted for the caller: the
  connection's token belongs to whoever runs `provision connect`.
- The workspace's cap on new tokens, `maxTokenLifetimeDays` (1 to 730), is read with
  `GET /api/2.0/workspace-conf?keys=maxTokenLifetimeDays` (admins; an unset key answers null,
  meaning 730 days; provider `docs/resources/workspace_conf.md`).

A token value only ever lives in a `Secret`; ids, comments and times are not secret.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError, translated
from provisioner.secret import Secret

PLATFORM_MAX_DAYS = 730


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    comment: str
    created: dt.datetime | None
    expires: dt.datetime | None  # None: never


@dataclass(frozen=True)
class MintedToken:
    value: Secret
    info: TokenInfo


def _time(ms: int | None) -> dt.datetime | None:
    if ms is None or ms < 0:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def create(client: WorkspaceClient, comment: str, lifetime_days: int) -> MintedToken:
    with translated("POST /api/2.0/token/create"):
        created = client.sdk.tokens.create(comment=comment, lifetime_seconds=lifetime_days * 86_400)
    info = created.token_info
    if not created.token_value or info is None or not info.token_id:
        raise WorkspaceError(0, "NO_TOKEN", "POST /api/2.0/token/create answered without a token")
    return MintedToken(
        Secret(created.token_value),
        TokenInfo(str(info.token_id), info.comment or "", _time(info.creation_time), _time(info.expiry_time)),
    )


def list_own(client: WorkspaceClient) -> list[TokenInfo]:
    """The caller's valid tokens (expired and revoked ones are not listed)."""
    with translated("GET /api/2.0/token/list"):
        listed = list(client.sdk.tokens.list())
    return [
        TokenInfo(str(t.token_id), t.comment or "", _time(t.creation_time), _time(t.expiry_time))
        for t in listed
        if t.token_id
    ]


def delete(client: WorkspaceClient, token_id: str) -> bool:
    """Revoke one of the caller's tokens; False when the workspace no longer knows it (already gone)."""
    try:
        with translated("POST /api/2.0/token/delete"):
            client.sdk.tokens.delete(token_id=token_id)
    except WorkspaceError as exc:
        if exc.not_found:
            return False
        raise
    return True


def max_lifetime_days(client: WorkspaceClient) -> int | None:
    """The workspace's `maxTokenLifetimeDays` (730 when unset); None when it cannot be read (not an admin)."""
    try:
        answer = client.workspace_conf("maxTokenLifetimeDays")
    except WorkspaceError:
        return None
    value = answer.get("maxTokenLifetimeDays")
    try:
        days = int(str(value)) if value not in (None, "") else 0
    except ValueError:
        return None
    return days if days > 0 else PLATFORM_MAX_DAYS
