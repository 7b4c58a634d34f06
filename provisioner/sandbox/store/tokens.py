"""Personal access tokens as the Token API manages them: lifetime, listing, revocation.

What is copied from reality, and where it is written down:
- `POST /api/2.0/token/create {comment, lifetime_seconds}` answers `token_value` and
  `token_info {token_id, creation_time, expiry_time, comment}`, times in epoch milliseconds,
  `expiry_time` -1 for none (databricks-sdk-py `databricks/sdk/service/settings.py`
  `TokensAPI.create`, `PublicTokenInfo`; provider `tokens/resource_token.go` `TokenInfo`).
  Without a lifetime the token gets the workspace's maximum, else two years ("If the
  lifetime is not specified, this token remains valid for 2 years", `TokensAPI.create`;
  "expire time will be set to maximum allowed by the workspace configuration or platform",
  provider `docs/resources/token.md`). A lifetime of 0 is refused ("requirement failed:
  Invalid timeout: 0", terraform-provider-databricks issues #494 and #1810).
- The workspace setting `maxTokenLifetimeDays` (1 to 730; provider
  `docs/resources/workspace_conf.md`, read with `GET /api/2.0/workspace-conf?keys=…`) caps
  *new* tokens only: a longer lifetime is refused with 400 `INVALID_PARAMETER_VALUE`. The
  exact wording of that message is not in any source we could read; ours names both values.
  Here the cap is the knob `workspace.max_token_lifetime_days` (None: not set).
- `GET /api/2.0/token/list` lists "all the valid tokens for a user-workspace pair": the
  caller's own, unexpired (`TokensAPI.list`).
- `POST /api/2.0/token/delete {token_id}` revokes one of the caller's tokens; an id that is
  not valid gets `RESOURCE_DOES_NOT_EXIST` (`TokensAPI.delete`).
- A revoked or expired PAT is refused with 403 "Invalid access token."
  (`../shared/reference/real-world-facts.md`; databricks-sdk-go issues #873, #917;
  terraform-provider-databricks issue #66).

Only SHA-256 digests of token values are kept, as in store/identities.py.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State, StoreBase

PLATFORM_MAX_DAYS = 730
DAY_MS = 86_400_000


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _ids(state: State) -> dict[str, Any]:
    ids: dict[str, Any] = state.setdefault(
        "identities", {"principals": {}, "pats": {}, "oauth_clients": {}, "oauth_tokens": {}}
    )
    ids.setdefault("pat_info", {})
    ids.setdefault("revoked_pats", [])
    return ids


def _public(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("token_id", "comment", "creation_time", "expiry_time")}


class TokenStore(StoreBase):
    def create_pat(self, principal_id: str, comment: str, lifetime_seconds: int | None) -> tuple[str, dict[str, Any]]:
        """A new PAT of `principal_id`: its value (for the answer only) and its public info."""
        with self._txn() as state:
            cap = state["faults"].get("workspace.max_token_lifetime_days")
            max_days = int(cap) if cap else PLATFORM_MAX_DAYS
            if lifetime_seconds is None:
                lifetime_seconds = max_days * 86_400
            if lifetime_seconds == 0:
                raise DatabricksError(400, "INVALID_PARAMETER_VALUE", "requirement failed: Invalid timeout: 0")
            if lifetime_seconds > max_days * 86_400 or (lifetime_seconds < 0 and cap):
                raise DatabricksError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Token lifetime of {lifetime_seconds} seconds exceeds the maximum token lifetime of "
                    f"{max_days} days configured for this workspace",
                )
            value = "dapi" + secrets.token_hex(16)
            now = int(time.time() * 1000)
            info = {
                "token_id": secrets.token_hex(32),
                "comment": comment,
                "creation_time": now,
                "expiry_time": -1 if lifetime_seconds < 0 else now + lifetime_seconds * 1000,
                "owner": principal_id,
            }
            ids = _ids(state)
            ids["pats"][_digest(value)] = principal_id
            ids["pat_info"][_digest(value)] = info
            return value, _public(info)

    def list_pats(self, principal_id: str) -> list[dict[str, Any]]:
        """The principal's valid (unrevoked, unexpired) tokens, oldest first."""
        now = time.time() * 1000
        with self._txn() as state:
            ids = _ids(state)
            listed = [
                _public(info)
                for digest, info in ids["pat_info"].items()
                if info["owner"] == principal_id and digest in ids["pats"] and not 0 <= info["expiry_time"] <= now
            ]
            return sorted(listed, key=lambda i: (i["creation_time"], i["token_id"]))

    def delete_pat(self, principal_id: str, token_id: str) -> None:
        """Revoke one of the principal's tokens; later calls with it get 403."""
        with self._txn() as state:
            ids = _ids(state)
            for digest, info in list(ids["pat_info"].items()):
                if info["token_id"] == token_id and info["owner"] == principal_id and digest in ids["pats"]:
                    del ids["pats"][digest]
                    del ids["pat_info"][digest]
                    ids["revoked_pats"].append(digest)
                    return
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Token with id {token_id} does not exist")

    def pat_refused(self, token: str) -> bool:
        """Was this a PAT that is now revoked or past its expiry (403, not 401)?"""
        digest = _digest(token)
        with self._txn() as state:
            ids = _ids(state)
            if digest in ids["revoked_pats"]:
                return True
            info = ids["pat_info"].get(digest)
            return info is not None and 0 <= info["expiry_time"] <= time.time() * 1000

    def expire_pats(self, comment_contains: str) -> list[str]:
        """Test knob: every valid PAT whose comment contains the text is now past its expiry; their ids."""
        now = int(time.time() * 1000)
        with self._txn() as state:
            ids = _ids(state)
            expired = []
            for digest, info in ids["pat_info"].items():
                live = digest in ids["pats"] and not 0 <= info["expiry_time"] <= now
                if live and comment_contains in info["comment"]:
                    info["expiry_time"] = now - 1
                    expired.append(info["token_id"])
            return expired

    def backdate_pat(self, token_id: str, seconds: int) -> None:
        """Test knob: the token was created (and expires) `seconds` earlier, as if minted long ago."""
        with self._txn() as state:
            for info in _ids(state)["pat_info"].values():
                if info["token_id"] == token_id:
                    info["creation_time"] -= seconds * 1000
                    if info["expiry_time"] >= 0:
                        info["expiry_time"] -= seconds * 1000

    def max_token_lifetime_days(self) -> int | None:
        """The workspace setting `maxTokenLifetimeDays` (None: not set)."""
        with self._txn() as state:
            cap = state["faults"].get("workspace.max_token_lifetime_days")
            return int(cap) if cap else None
