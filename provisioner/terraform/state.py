"""The one place that reads Terraform state and typed views of the document, so no caller walks
its JSON by hand. A `local` backend's state is read from its file, as `terraform state pull`
would read it, without starting Terraform (`read_local_state`); any other backend's through
`terraform state pull` (no provider start). terraform.read_state composes them with init. A local
state file a killed Terraform left empty is put back from its backup (`restore_torn_local_state`)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
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


# Terraform 1.11 internal/backend/local/backend.go: DefaultStateFilename, DefaultWorkspaceDir,
# DefaultWorkspaceFile, DefaultBackupExtension.
_STATE_FILE, _WORKSPACE_DIR, _WORKSPACE_FILE = "terraform.tfstate", "terraform.tfstate.d", "environment"
_BACKUP_EXTENSION = ".backup"
# One restore at a time in this process: fcntl locks belong to the process, not the thread, so
# two threads' locks would not exclude each other; the second then finds the file written.
_RESTORING = threading.Lock()


def local_state_path(root: Path, environ: Mapping[str, str]) -> Path | None:
    """The file `terraform state pull` reads in `root` when its initialised backend is `local`;
    None for another backend or a root not initialised (only Terraform can read those).

    As Terraform 1.11 finds it (run in `root` with `environ`): the backend that init recorded in
    `<data dir>/terraform.tfstate` (TF_DATA_DIR, else .terraform: command/meta_backend.go); the
    workspace from TF_WORKSPACE, else `<data dir>/environment`, else "default" (command/meta.go
    `Workspace`); the path from backend/local/backend.go `StatePaths`: the backend's `path`
    (terraform.tfstate) for the default workspace, `<workspace_dir>/<name>/terraform.tfstate`
    (terraform.tfstate.d) for another."""
    data_dir = root / (environ.get("TF_DATA_DIR") or ".terraform")  # unset or empty: the default
    try:
        backend = json.loads((data_dir / "terraform.tfstate").read_text(encoding="utf-8")).get("backend")
        workspace = environ.get("TF_WORKSPACE") or _stripped_text(data_dir / _WORKSPACE_FILE) or "default"
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(backend, dict) or backend.get("type") != "local":
        return None
    config = backend.get("config")
    settings: Mapping[str, Any] = config if isinstance(config, dict) else {}
    if workspace == "default":
        return root / str(settings.get("path") or _STATE_FILE)
    return root / str(settings.get("workspace_dir") or _WORKSPACE_DIR) / workspace / _STATE_FILE


def _stripped_text(path: Path) -> str:
    """A file's text, trimmed as Terraform trims the workspace file; "" when there is none."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def read_local_state(root: Path, environ: Mapping[str, str]) -> TerraformState | None:
    """The state `terraform state pull` would print for `root`, read from a `local` backend's
    file; None where Terraform must read it: another backend, a root not initialised, or a file
    that is not a plain version-4 state (Terraform upgrades older formats and names what is
    wrong with a torn one; OpenTofu decrypts its encrypted state, whose JSON holds only `meta`,
    `encrypted_data` and `encryption_version`: opentofu internal/encryption/base.go)."""
    path = local_state_path(root, environ)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TerraformState()  # no state yet: `state pull` prints nothing
    except (OSError, ValueError):
        return None
    if not text.strip():
        # Terraform's lock creates the file empty and reads an empty file as no state
        # (states/statemgr/filesystem.go `Lock`; states/statefile/read.go `ErrNoState`).
        return TerraformState()
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return TerraformState(doc) if isinstance(doc, dict) and doc.get("version") == 4 else None


def restore_torn_local_state(root: Path, environ: Mapping[str, str]) -> Path | None:
    """Put back the state a killed Terraform left torn in `root`'s local backend; the file
    restored, or None when there was nothing to restore.

    Terraform's local state manager writes in place (1.11 states/statemgr/filesystem.go
    `writeState`, with a TODO to write a temporary file and rename it instead): on a run's first
    write it copies the state it started from to `<path>.backup`, then truncates the file and
    writes the new state. A run killed between the truncation and the write leaves an empty file,
    which Terraform reads as no state: the next plan would create every resource again. The
    backup is the state as it was before the killed run's first write — what a kill a moment
    earlier would have left — and what the killed run made after it is found as any killed run's
    work is (a cluster by its tags). The file is only written under Terraform's own lock on it,
    an fcntl write lock (statemgr/filesystem_lock_unix.go) that a live run holds while it writes:
    the instant between its truncation and its write is never taken for a tear.
    """
    with _RESTORING:
        return _restore_torn_local_state(root, environ)


def _restore_torn_local_state(root: Path, environ: Mapping[str, str]) -> Path | None:
    path = local_state_path(root, environ)
    if path is None:
        return None
    try:
        if path.stat().st_size != 0:
            return None
        saved = path.with_name(path.name + _BACKUP_EXTENSION).read_bytes()
        doc = json.loads(saved)
    except (OSError, ValueError):
        return None  # no file, no backup, or a backup that is not a state: nothing to put back
    if not isinstance(doc, dict) or doc.get("version") != 4:
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a live Terraform holds it: its own write is under way
        if os.fstat(fd).st_size != 0:
            return None  # written since the first look
        os.pwrite(fd, saved, 0)
        os.fsync(fd)
    finally:
        os.close(fd)  # and with it the lock
    return path
