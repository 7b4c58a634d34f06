"""Shared machinery of the reliability & security suite.

- `new_project`: a throwaway project (the root conftest's `Project`) for module-scoped setups.
- `run_sampled`: runs the real CLI and, while it runs, samples `/proc/<pid>/cmdline` of every
  descendant (terraform, its provider plugins, anything they start) — argv is world-readable
  on Linux, so a secret there is a leak even if it is never printed.
- `Needles`: every form a secret may take on its way out (raw, URL-encoded, URL-decoded, the
  SAS `sig=` value alone) and a scanner for text, bytes and whole directory trees.
"""

from __future__ import annotations

import atexit
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote, unquote_plus

from tests.conftest import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, Project

__all__ = ["AEP_SECRET", "BASE_CONFIG", "DATABRICKS_PAT", "Project"]

# The sandbox IMS emulator's access tokens; they live only in its memory, so we match their shape.
IMS_TOKEN_RE = re.compile(rb"eyJhbGciOiJSUzI1NiJ9\.[A-Za-z0-9_\-]{20,}")
MIN_NEEDLE = 8


def new_project(directory: Path, config: Mapping[str, Any] | None = None, **extra_env: str) -> Project:
    (directory / "home").mkdir(parents=True, exist_ok=True)
    proj = Project(directory, copy.deepcopy(dict(config or BASE_CONFIG)))
    # Crash logs (tempfile.mkstemp) land in the project's tmp/, where the file scan sees them.
    proj.extra_env.update({"TMPDIR": str(short_tmp(directory)), **extra_env})
    proj.write_config()
    return proj


def short_tmp(directory: Path) -> Path:
    """`directory/tmp`, or a link there to a short directory: the provider plugin's unix socket
    lives under TMPDIR (`tf.runner`: `<TMPDIR>/tmpXXXXXXXX/py-tf-plugin.sock`, as go-plugin's
    does), and a socket path has at most 107 bytes — which a pytest-xdist worker's tmp_path
    (`…/popen-gw1/<test name>/tmp`) can pass. `scan_tree` follows the link."""
    inside = directory / "tmp"
    if inside.is_symlink():  # a copy of a prepared project: its own temp dir, not the original's
        inside.unlink()
    if len(str(inside)) <= 70:
        inside.mkdir(exist_ok=True)
        return inside
    if inside.exists():
        shutil.rmtree(inside)
    short = Path(tempfile.mkdtemp(prefix="dlz-"))
    atexit.register(shutil.rmtree, short, ignore_errors=True)
    inside.symlink_to(short, target_is_directory=True)
    return short


# ---- secrets and their forms --------------------------------------------------------------


def forms(value: str) -> set[str]:
    """The ways a value can appear once some layer encodes or decodes it."""
    candidates = {
        value,
        quote(value, safe=""),
        quote(value, safe="/=&"),
        quote_plus(value),
        unquote(value),
        unquote_plus(value),
        quote(unquote(value), safe=""),
        quote(quote(value, safe=""), safe=""),  # double-encoded (%252F)
    }
    return {c for c in candidates if len(c) >= MIN_NEEDLE}


def sas_sig(token: str) -> str:
    # parse_qs would decode the value; keep the raw, URL-encoded signature.
    for part in token.split("&"):
        if part.lower().startswith("sig="):
            return part[4:]
    raise ValueError("SAS token without sig=")


@dataclass
class Needles:
    """Named secrets; `scan*` report where a form of one appears (by label, never by value)."""

    secrets: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, value: str) -> None:
        self.secrets[label] = value

    def add_sas(self, token: str) -> None:
        n = sum(1 for k in self.secrets if k.startswith("sas"))
        self.secrets[f"sas#{n}"] = token
        self.secrets[f"sas#{n}.sig"] = sas_sig(token)
        assert parse_qs(token)["sig"], "the sandbox's token has the real SAS shape"

    def add_from_store(self, store: Any) -> None:
        known = set(self.secrets.values())
        snapshot = store.snapshot()
        for record in snapshot["dlz"].values():
            if record["SASToken"] not in known:
                self.add_sas(record["SASToken"])
        # The storage account keys that sign the sandbox's SAS tokens are secrets too.
        for account, key in snapshot.get("dlz_accounts", {}).items():
            if key not in known:
                self.add(f"account-key#{account}", key)
        # The Databricks token inside each AEP base connection (connect mints one per connection,
        # rotation and repointing mint more): every one ever sent stays a needle.
        for connection in snapshot.get("connections", []):
            value = ((connection.get("auth") or {}).get("params") or {}).get("accessToken")
            if value and value not in known:
                self.add(f"connection-token#{len(self.secrets)}", value)
                known.add(value)

    def _patterns(self) -> list[tuple[str, bytes]]:
        out = []
        for label, value in self.secrets.items():
            for form in forms(value):
                out.append((label, form.encode()))
        return out

    def scan_bytes(self, data: bytes, where: str) -> list[str]:
        hits = [f"{label} in {where}" for label, needle in self._patterns() if needle in data]
        if IMS_TOKEN_RE.search(data):
            hits.append(f"IMS access token in {where}")
        return hits

    def scan_text(self, text: str, where: str) -> list[str]:
        return self.scan_bytes(text.encode("utf-8", "surrogateescape"), where)

    def scan_tree(self, root: Path, skip: Iterable[Path] = ()) -> tuple[list[str], int]:
        """Every file under `root` except `skip`; returns (hits, files scanned)."""
        skipped = {p.resolve() for p in skip}
        hits: list[str] = []
        count = 0
        for dirpath, _dirs, files in os.walk(root, followlinks=True):
            for name in files:
                path = Path(dirpath) / name
                if path.resolve() in skipped or is_state_or_plan(path) or (path.is_symlink() and not path.exists()):
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                count += 1
                hits.extend(self.scan_bytes(data, str(path.relative_to(root))))
        return hits, count


def is_state_or_plan(path: Path) -> bool:
    """Terraform state and saved plans hold the token by design (protected by 0600 instead)."""
    if path.suffix == ".tfplan" or path.name in {"terraform.tfstate", "terraform.tfstate.backup", "errored.tfstate"}:
        # .terraform/terraform.tfstate is the backend configuration, not resource state: scan it.
        return not (path.name == "terraform.tfstate" and path.parent.name == ".terraform")
    return bool(re.fullmatch(r"terraform\.tfstate\.\d+\.backup", path.name))


def state_and_plan_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and is_state_or_plan(p)]


# ---- running the CLI while watching its process tree ------------------------------------


@dataclass
class Sampled:
    result: subprocess.CompletedProcess[str]
    cmdlines: set[tuple[str, ...]]
    samples: int

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # comm may contain spaces and parens
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def run_sampled(
    project: Project, *args: str, env: Mapping[str, str] | None = None, sandbox: bool = True, timeout: float = 180
) -> Sampled:
    argv = [sys.executable, "-m", "provisioner.main", *args, "--config", str(project.config_path)]
    if sandbox:
        argv.append("--sandbox")
    proc = subprocess.Popen(
        argv,
        cwd=project.dir,
        env=dict(env) if env is not None else project.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[tuple[str, ...]] = set()
    samples = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal samples
        while not stop.is_set():
            for pid in [proc.pid, *descendants(proc.pid)]:
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if raw:
                    seen.add(tuple(raw.decode("utf-8", "replace").rstrip("\0").split("\0")))
            samples += 1
            stop.wait(0.003)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
    return Sampled(subprocess.CompletedProcess(argv, proc.returncode, out, err), seen, samples)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def tree_fingerprint(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mtime of every file: 'unchanged' means neither moved."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".terraform" not in p.parts
    }
