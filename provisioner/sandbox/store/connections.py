"""AEP Flow Service base connections."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from provisioner.sandbox.store.base import StoreBase, now_ms


class ConnectionStore(StoreBase):
    def add_connection(self, org_id: str, sandbox_name: str, body: Mapping[str, Any]) -> dict[str, str]:
        with self._txn() as state:
            now = now_ms()
            record = {
                **copy.deepcopy(dict(body)),
                "id": str(uuid.uuid4()),
                "etag": f'"{uuid.uuid4().hex[:8]}-0000-0200-0000-{uuid.uuid4().hex[:12]}"',
                "org_id": org_id,
                "sandbox_name": sandbox_name,
                "createdAt": now,
                "updatedAt": now,
                "state": "enabled",
            }
            state["connections"].append(record)
            return {"id": record["id"], "etag": record["etag"]}

    def connections(self) -> list[dict[str, Any]]:
        """Every stored connection, access tokens included (tests check what was sent)."""
        with self._txn() as state:
            return copy.deepcopy(state["connections"])
