"""Personal access tokens as the Token API lists them: id, comment, creation and expiry times.

databricks-sdk-py `service/settings.py`: `TokensAPI.create` (`lifetime_seconds`: "If the
lifetime is not specified, this token remains valid indefinitely") answers `token_value` and
`token_info` (`PublicTokenInfo`: `token_id`, `comment`, `creation_time` and `expiry_time` in
epoch milliseconds, "-1 if not applicable"); `TokensAPI.list` → `{"token_infos": [...]}` of the
caller's own tokens; `TokensAPI.delete(token_id)` revokes one. The value itself is kept as a
digest only (store/identities.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, StoreBase, now_ms
from provisioner.sandbox.store.identities import _digest, _identities


class TokenStore(StoreBase):
    def create_pat(self, principal_id: str, comment: str, lifetime_seconds: int | None) -> tuple[str, dict[str, Any]]:
        """A new PAT of the principal: its value and its `token_info`."""
        token = "dapi" + secrets.token_hex(16)
        created = now_ms()
        info = {
            "token_id": secrets.token_hex(32),
            "comment": comment,
            "creation_time": created,
            "expiry_time": created + lifetime_seconds * 1000 if lifetime_seconds and lifetime_seconds > 0 else -1,
        }
        with self._txn() as state:
            ids = _identities(state)
            ids["pats"][_digest(token)] = principal_id
            ids.setdefault("pat_info", {})[info["token_id"]] = {**info, "owner": principal_id, "digest": _digest(token)}
        return token, info

    def list_pats(self, principal_id: str) -> list[dict[str, Any]]:
        with self._txn() as state:
            ids = _identities(state)
            return [
                {k: v for k, v in info.items() if k not in ("owner", "digest")}
                for info in ids.get("pat_info", {}).values()
                if info["owner"] == principal_id and info["digest"] in ids["pats"]
            ]

    def delete_pat(self, principal_id: str, token_id: str) -> None:
        with self._txn() as state:
            ids = _identities(state)
            info = ids.get("pat_info", {}).get(token_id)
            if info is None or info["owner"] != principal_id:
                raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Unable to locate token: {token_id}")
            del ids["pat_info"][token_id]
            ids["pats"].pop(info["digest"], None)
