"""Find the terraform (or OpenTofu `tofu`) binary and check its version."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.atomic import atomic_write
from provisioner.cache_dir import tool_cache_dir
from provisioner.errors import TerraformError

MIN_VERSION = (1, 5, 0)
_VERSION_RE = re.compile(r"(Terraform|OpenTofu) v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class TerraformBinary:
    path: str
    version: tuple[int, int, int]
    flavor: str  # "terraform" or "tofu"


def find_terraform(environ: Mapping[str, str] | None = None) -> TerraformBinary:
    """TERRAFORM_BINARY if set, else `terraform` then `tofu` on PATH; at least 1.5."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("TERRAFORM_BINARY")
    if explicit:
        path = shutil.which(explicit, path=environ.get("PATH"))
        if path is None:
            raise TerraformError(
                f"TERRAFORM_BINARY={explicit}: not found or not executable — point it at a terraform >= 1.5 binary"
            )
    else:
        path = shutil.which("terraform", path=environ.get("PATH")) or shutil.which("tofu", path=environ.get("PATH"))
        if path is None:
            raise TerraformError(
                "terraform not found on PATH — install Terraform >= 1.5 (or OpenTofu) or set TERRAFORM_BINARY"
            )
    return _probe_once(path, environ)


# `terraform version` is a process start (~40 ms, and the plan waited for it): a binary's
# answer is remembered per machine, keyed by the file as it is on disk, so a binary replaced
# or upgraded in place is asked again. open_context() starts the lookup in the background at
# once (prefetch) and the runner's later call joins it.
_probe_lock = threading.Lock()
_probed: dict[str, TerraformBinary] = {}
VERSIONS_FILE = "terraform-versions.json"  # in the tool cache directory


def _probe_once(path: str, environ: Mapping[str, str]) -> TerraformBinary:
    with _probe_lock:
        try:
            st = os.stat(path)
        except OSError:
            return _probe(path)
        key = f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        if key not in _probed:
            cache = tool_cache_dir(environ) / VERSIONS_FILE
            known = _read_known(cache)
            _probed[key] = _from_entry(known.get(key)) or _remember(cache, known, key, _probe(path))
        return _probed[key]  # failures raise and are not remembered


def _read_known(cache: Path) -> dict[str, Any]:
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _from_entry(entry: object) -> TerraformBinary | None:
    if not isinstance(entry, dict):
        return None
    try:
        path, version, flavor = entry["path"], tuple(int(v) for v in entry["version"]), entry["flavor"]
    except (ValueError, KeyError, TypeError):
        return None
    if len(version) != 3 or version < MIN_VERSION:
        return None
    return TerraformBinary(str(path), (version[0], version[1], version[2]), str(flavor))


def _remember(cache: Path, known: dict[str, Any], key: str, binary: TerraformBinary) -> TerraformBinary:

    # Binaries that are gone (an upgrade, a deleted checkout) are forgotten, not kept forever.
    kept = {k: v for k, v in known.items() if isinstance(v, dict) and os.path.exists(str(v.get("path")))}
    kept[key] = {"path": binary.path, "version": list(binary.version), "flavor": binary.flavor}
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next run a probe
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps(kept, indent=1, sort_keys=True) + "\n", mode=0o644)
    return binary


def prefetch(environ: Mapping[str, str]) -> None:
    """Probe the binary in a daemon thread; errors surface later, from the real call."""

    def probe() -> None:
        with contextlib.suppress(Exception):  # reported by the caller that needs the binary
            find_terraform(environ)

    threading.Thread(target=probe, name="terraform-probe", daemon=True).start()


def _probe(path: str) -> TerraformBinary:
    try:
        out = subprocess.run(
            [path, "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1", "HOME": os.environ.get("HOME", "/")},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TerraformError(
            f"{path}: cannot run `version` ({type(exc).__name__}) — is it a terraform binary?"
        ) from None
    match = _VERSION_RE.search(out.stdout)
    if match is None:
        raise TerraformError(f"{path}: `version` printed no Terraform/OpenTofu version — is it a terraform binary?")
    flavor = "tofu" if match.group(1) == "OpenTofu" else "terraform"
    version = (int(match.group(2)), int(match.group(3)), int(match.group(4)))
    if version < MIN_VERSION:
        raise TerraformError(
            f"{path}: version {'.'.join(map(str, version))} is too old — dlz-provisioner needs >= 1.5.0; upgrade it"
        )
    return TerraformBinary(path, version, flavor)
