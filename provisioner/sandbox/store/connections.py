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

    def update_connection(
        self, org_id: str, sandbox_name: str, connection_id: str, etag: str, body: Mapping[str, Any]
    ) -> dict[str, str] | None:
        """Compare-and-set: replace the connection if `etag` is still current; its new id+etag,
        None when the etag is stale (another writer came first). KeyError when there is none."""
        with self._txn() as state:
            for record in state["connections"]:
                if record["id"] != connection_id or (record["org_id"], record["sandbox_name"]) != (
                    org_id,
                    sandbox_name,
                ):
                    continue
                if record["etag"].strip('"') != etag.strip('"'):
                    return None
                keep = {k: record[k] for k in ("id", "org_id", "sandbox_name", "createdAt", "state")}
                record.clear()
                record.update({**copy.deepcopy(dict(body)), **keep})
                record["etag"] = f'"{uuid.uuid4().hex[:8]}-0000-0200-0000-{uuid.uuid4().hex[:12]}"'
                record["updatedAt"] = now_ms()
                return {"id": record["id"], "etag": record["etag"]}
            raise KeyError(connection_id)

    def set_connection_description(self, connection_id: str, description: str) -> None:
        """Sandbox knob: rewrite a connection's description, keeping its etag (as time passing would)."""
        with self._txn() as state:
            for record in state["connections"]:
                if record["id"] == connection_id:
                    record["description"] = description
