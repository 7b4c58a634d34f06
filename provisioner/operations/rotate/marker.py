"""The marker a rotation leaves while it is unfinished (between AEP's refresh and convergence)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.atomic import atomic_write

if TYPE_CHECKING:
    from provisioner.config.model import Environment

MARKER_NAME = "dlz-rotation.json"


@dataclass(frozen=True)
class RotationMarker:
    """`<root>/.terraform/dlz-rotation.json`: a rotation began and has not finished.

    Holds times and the new expiry date only — never a token. While it exists, `rotate`
    refuses to refresh again (a second refresh would revoke a token that may already be
    live on some clusters and widen the outage); `rotate --resume` finishes and removes it.
    """

    path: Path

    @classmethod
    def of(cls, env: Environment) -> RotationMarker:
        return cls(env.root_dir / ".terraform" / MARKER_NAME)

    def load(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"started_at": "unknown"}  # unreadable still means "unfinished"
        return doc if isinstance(doc, dict) else {"started_at": "unknown"}

    def write(self, **fields: Any) -> None:
        doc = {**(self.load() or {}), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(doc, indent=2, sort_keys=True) + "\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
