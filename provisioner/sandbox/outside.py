"""The sandbox seen from outside: what `provision sandbox serve` tells other processes, and
the exports `provision sandbox env` prints for raw `terraform`, databricks-sdk and the
Databricks CLIs.

`serve` writes `<state dir>/serve/serve.json` (its pid and URLs, no secret) and, when it made
the workspace PAT itself, `serve/token` (mode 0600); both go when it stops. `env` reads them
and prints shell exports; the token is exported as `$(cat <file>)`, so it never appears in
the printed text, a terminal's scroll-back or a CI log. The Databricks clients take
`DATABRICKS_HOST` + `DATABRICKS_TOKEN` (databricks-sdk-py `config.py`: `host`, `token`
attributes read from those variables; the legacy databricks-cli reads the same two), and keep
only scheme and host of it, so `DATABRICKS_HOST` is the workspace's own port (no path prefix).
"""

from __future__ import annotations

import json
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError
from provisioner.sandbox.files import atomic_write
from provisioner.sandbox.mirror import PROVIDER_SERVER_ENV

SERVE_DIR = "serve"
SERVE_FILE = "serve.json"
TOKEN_FILE = "token"


@dataclass(frozen=True)
class Served:
    """What a running `serve` published."""

    pid: int
    platform_url: str
    workspaces: dict[str, str]  # configured host → its own URL (no path prefix)
    terraform_env: dict[str, str]  # TF_CLI_CONFIG_FILE, PROVISION_SANDBOX_PYTHON, PROVISION_SANDBOX_HOSTS, …
    token_file: str | None


def publish(state_dir: Path, served: Served, token: str | None) -> Path:
    """Write serve.json (and the token file); returns the directory to remove at the end."""
    directory = state_dir / SERVE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    if token is not None:
        atomic_write(directory / TOKEN_FILE, token + "\n", mode=0o600)
    document: dict[str, Any] = {
        "pid": served.pid,
        "platformUrl": served.platform_url,
        "workspaces": served.workspaces,
        "terraformEnv": served.terraform_env,
        "tokenFile": str(directory / TOKEN_FILE) if token is not None else None,
    }
    atomic_write(directory / SERVE_FILE, json.dumps(document, indent=2, sort_keys=True) + "\n", mode=0o644)
    return directory


def withdraw(directory: Path) -> None:
    for name in (SERVE_FILE, TOKEN_FILE):
        (directory / name).unlink(missing_ok=True)


def read_served(state_dir: Path) -> Served:
    """The running `serve` of this state directory; a ConfigError when there is none."""
    path = state_dir / SERVE_DIR / SERVE_FILE
    hint = "start one with `provision sandbox serve` (it runs in the foreground; use another terminal or `&`)"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no sandbox is serving this project — {hint}") from None
    except ValueError:
        raise ConfigError(f"{path}: not a serve file (unreadable JSON) — {hint}") from None
    served = Served(
        pid=int(document["pid"]),
        platform_url=str(document["platformUrl"]),
        workspaces=dict(document["workspaces"]),
        terraform_env=dict(document["terraformEnv"]),
        token_file=document.get("tokenFile"),
    )
    if not _listening(served.platform_url):
        raise ConfigError(f"{path}: the sandbox that wrote it (pid {served.pid}) is not serving any more — {hint}")
    return served


def _listening(url: str) -> bool:
    host, _, port = url.removeprefix("http://").partition(":")
    try:
        with socket.create_connection((host, int(port.rstrip("/"))), timeout=1):
            return True
    except OSError:
        return False


def exports(served: Served, host: str | None) -> list[str]:
    """Shell lines for `eval`: Terraform's sandbox environment, and the workspace `host` for the
    Databricks clients (None: no DATABRICKS_HOST, there is more than one workspace). Not the
    provider server (mirror.PROVIDER_SERVER_ENV): only Terraform's keeper under `provision` reads
    it, and `provision` drops it, with a warning, from a shell that has it."""
    lines = [
        f"export {name}={shlex.quote(value)}"
        for name, value in sorted(served.terraform_env.items())
        if name != PROVIDER_SERVER_ENV
    ]
    if host is not None:
        lines.append(f"export DATABRICKS_HOST={shlex.quote(served.workspaces[host])}")
    if served.token_file is not None:
        lines.append(f'export DATABRICKS_TOKEN="$(cat {shlex.quote(served.token_file)})"')
        lines.append("export DATABRICKS_AUTH_TYPE=pat")
    else:
        lines.append("# DATABRICKS_TOKEN / DATABRICKS_CLIENT_ID+_SECRET: the credentials you exported before `serve`")
    # A profile in ~/.databrickscfg would otherwise win for the CLIs; the sandbox's values are explicit.
    lines.append("unset DATABRICKS_CONFIG_PROFILE")
    return lines
