"""What a JSON Schema cannot say about provision.yaml: secrets do not belong in it, text must be
in Unicode NFC (as HCL will make it), names must be safe directory and HCL names, and cluster
names unique and their combination of settings one Databricks accepts."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioner.config.cluster_rules import cluster_problem
from provisioner.errors import ConfigError

ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Names Terraform or our generated roots give a meaning of their own.
RESERVED_NAMES = frozenset(
    {
        "count",
        "for_each",
        "depends_on",
        "lifecycle",
        "provider",
        "providers",
        "locals",
        "module",
        "data",
        "var",
        "self",
        "terraform",
        "each",
        "path",
        "dlz",
        "import",
        "moved",
        "removed",
    }
)
# Keys that would hold a secret if someone typed one into the file.
_SECRET_WORDS = frozenset({"secret", "token", "password", "passwd", "pwd", "pat", "credential", "credentials"})
_SECRET_KEYS = frozenset({"conn_str", "access_key", "sas_token", "sastoken", "client_secret"})
_SAFE_SECRETISH_KEYS = frozenset({"secret_scope", "secret_key"})
_SECRET_VALUE_RES = (
    (re.compile(r"(^|[?&])sig=[A-Za-z0-9%+/=]{8,}"), "a SAS token"),
    (re.compile(r"\bdapi[0-9a-f]{32}\b"), "a Databricks personal access token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."), "an access token (JWT)"),
)
_FREE_FORM_MAPS = frozenset({"spark_conf", "spark_env_vars", "custom_tags"})


def reject_secrets(path: Path, node: Any, where: tuple[str | int, ...] = ()) -> None:
    if isinstance(node, dict):
        free_form = bool(where) and where[-1] in _FREE_FORM_MAPS
        for key, value in node.items():
            key_s = str(key)
            if not free_form and _looks_secret(key_s):
                raise ConfigError(
                    f"{path}: {dotted((*where, key_s))}: secrets do not belong in provision.yaml — "
                    "remove the key and export AEP_CLIENT_SECRET / DATABRICKS_TOKEN (or the backend's variable) instead"
                )
            reject_secrets(path, value, (*where, key_s))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            reject_secrets(path, item, (*where, i))
    elif isinstance(node, str):
        for pattern, what in _SECRET_VALUE_RES:
            if pattern.search(node):
                raise ConfigError(
                    f"{path}: {dotted(where)}: the value looks like {what} — secrets do not belong in "
                    "provision.yaml; the tool fetches the SAS token itself and reads others from the environment"
                )


def require_nfc(path: Path, node: Any, where: tuple[str | int, ...] = ()) -> None:
    """HCL normalises every string literal to Unicode NFC, so a decomposed value ("e" + U+0301)
    would reach Terraform as a different string than the one written: refuse it instead."""
    if isinstance(node, dict):
        for key, value in node.items():
            require_nfc(path, key, where)
            require_nfc(path, value, (*where, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            require_nfc(path, item, (*where, i))
    elif isinstance(node, str) and not unicodedata.is_normalized("NFC", node):
        raise ConfigError(
            f"{path}: {dotted(where) or '(top level)'}: text is not in Unicode NFC form, which Terraform would "
            "silently change — write it with composed characters (e.g. 'é' as one character)"
        )


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_SECRETISH_KEYS:
        return False
    words = set(re.split(r"[_.\-]", lowered))
    return lowered in _SECRET_KEYS or bool(words & _SECRET_WORDS)


def check_env_name(path: Path, name: Any) -> None:
    if not isinstance(name, str) or not ENV_NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ConfigError(
            f"{path}: environments.{name}: not a safe environment name — use a lower-case letter, then letters, "
            "digits, '-' or '_' (at most 32; no '/', '..' or reserved words); it becomes a directory name"
        )


def check_clusters(path: Path, env: str | None, doc: Mapping[str, Any], overlay: Mapping[str, Any]) -> None:
    """Unique, unreserved names and a combination of settings Databricks accepts (after the schema)."""
    seen: set[str] = set()
    for i, cluster in enumerate(doc["clusters"]):
        name = cluster["name"]
        prefix = f"environments.{env}." if env and "clusters" in overlay else ""
        if name in RESERVED_NAMES:
            raise ConfigError(f"{path}: {prefix}clusters[{i}].name: '{name}' is a reserved word — choose another name")
        if name in seen:
            raise ConfigError(
                f"{path}: {prefix}clusters[{i}].name: '{name}' appears twice — cluster names must be unique"
            )
        seen.add(name)
        problem = cluster_problem(cluster)
        if problem is not None:
            raise ConfigError(f"{path}: {prefix}clusters[{i}].{problem[0]}: {problem[1]}")
        autoscale = cluster.get("autoscale")
        if autoscale and autoscale["min_workers"] > autoscale["max_workers"]:
            raise ConfigError(
                f"{path}: {prefix}clusters[{i}].autoscale: min_workers {autoscale['min_workers']} is above "
                f"max_workers {autoscale['max_workers']} — make min_workers <= max_workers"
            )


def dotted(keys: tuple[Any, ...]) -> str:
    """A key path as the user writes it: `clusters[0].spark_conf`.

    A key a user could not type bare (a newline, a quote, a control character) is shown
    quoted and escaped — `spark_conf["a\\nb"]` — so the error stays one readable line.
    """
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(key, str) and not _PLAIN_KEY.fullmatch(key):
            out += f"[{json.dumps(key, ensure_ascii=not key.isprintable())}]"
        else:
            out += ("." if out else "") + str(key)
    return out


# What a YAML key usually looks like, including Spark's dotted names and tag keys.
_PLAIN_KEY = re.compile(r"[\w.:/@+-]+")
