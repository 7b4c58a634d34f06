"""The one place that reads Terraform state: `terraform state pull` (any backend, no provider
start; terraform.read_state composes it with init) and typed views of the document, so no
caller walks its JSON by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioner.terraform.runner import Runner


def state_pull_args() -> list[str]:
    return ["state", "pull"]


class StatePull(Runner):
    def state_pull(self) -> dict[str, Any]:
        """The current state document ({} when there is none yet). Holds secrets: never print it."""
        return self.run_json(state_pull_args(), "state pull")


def state_push_args(path: Path, lock_timeout: str) -> list[str]:
    return ["state", "push", f"-lock-timeout={lock_timeout}", str(path)]


class StatePush(Runner):
    def state_push(self, path: Path, lock_timeout: str = "0s") -> None:
        self.run(state_push_args(path, lock_timeout), "state push")


def state_rm_args(addresses: Sequence[str], lock_timeout: str) -> list[str]:
    # No backup copy: with a local state it would be one more file holding the token (inline mode).
    return ["state", "rm", "-backup=-", f"-lock-timeout={lock_timeout}", *addresses]


class StateRm(Runner):
    def state_rm(self, addresses: Sequence[str], lock_timeout: str = "0s") -> None:
        """Forget resources: Terraform stops managing them; nothing changes in the workspace."""
        self.run(state_rm_args(addresses, lock_timeout), "state rm")


class TerraformState:
    """A state document's managed resources. Attribute values may be secrets (the SAS token in
    `databricks_secret.string_value`): compare them, never print them; the repr shows none."""

    def __init__(self, doc: Mapping[str, Any] | None = None) -> None:
        self._resources: list[Mapping[str, Any]] = [
            res for res in (doc or {}).get("resources", []) if isinstance(res, Mapping) and res.get("mode") == "managed"
        ]

    def __repr__(self) -> str:
        return f"TerraformState({len(self._resources)} managed resources)"

    def instances(self, type_: str, name: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(resource name, attributes) of every instance of `type_` (and `name`, if given)."""
        out: list[tuple[str, dict[str, Any]]] = []
        for res in self._resources:
            if res.get("type") != type_ or (name is not None and res.get("name") != name):
                continue
            for inst in res.get("instances", []):
                out.append((str(res.get("name")), dict(inst.get("attributes") or {})))
        return out

    def resource(self, type_: str, name: str | None = None) -> dict[str, Any] | None:
        """The attributes of the first instance of `type_` (and `name`), or None if there is none."""
        found = self.instances(type_, name)
        return found[0][1] if found else None

    def addresses(self) -> list[str]:
        """The address (`[module.]type.name`) of every managed resource that has instances."""
        out = []
        for res in self._resources:
            if res.get("instances"):
                module = f"{res['module']}." if res.get("module") else ""
                out.append(f"{module}{res.get('type')}.{res.get('name')}")
        return out

    def clusters(self) -> dict[str, str]:
        """Resource name → cluster id of every managed databricks_cluster."""
        out: dict[str, str] = {}
        for name, attrs in self.instances("databricks_cluster"):
            cid = attrs.get("cluster_id") or attrs.get("id")
            if cid:
                out[name] = str(cid)
        return out


def local_state_file(root: Path, settings: Mapping[str, Any], environ: Mapping[str, str]) -> Path | None:
    """Where a `local` backend keeps the root's state (its `path`, else terraform.tfstate), or
    None when a Terraform workspace is selected (TF_WORKSPACE: another file). For reading the
    state without starting Terraform, where a guess is checked afterwards."""
    if environ.get("TF_WORKSPACE", "default") != "default":
        return None
    return root / str(settings.get("path") or "terraform.tfstate")


def read_state_file(path: Path) -> TerraformState:
    """A state file as it is on disk (empty when there is none, or it is not a state)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TerraformState()
    return TerraformState(doc if isinstance(doc, dict) else None)
