"""What a JSON Schema cannot say about provision.yaml: secrets do not belong in it, text must be
in Unicode NFC (as HCL will make it), names must be safe directory and HCL names, and cluster
names unique and their combination of settings one Databricks accepts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from provisioner.aep.sas import SAS_CONF_PREFIX
from provisioner.config.cluster_rules import cluster_problem
from provisioner.config.keys import Key
from provisioner.config.problems import Problems

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
_SAFE_SECRETISH_KEYS = frozenset({"secret_scope", "secret_key", "token_lifetime_days"})
_SECRET_VALUE_RES = (
    (re.compile(r"(^|[?&])sig=[A-Za-z0-9%+/=]{8,}"), "a SAS token"),
    (re.compile(r"\bdapi[0-9a-f]{32}\b"), "a Databricks personal access token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."), "an access token (JWT)"),
)
_FREE_FORM_MAPS = frozenset({"spark_conf", "spark_env_vars", "custom_tags"})


def reject_secrets(problems: Problems, node: Any, where: tuple[Key, ...] = ()) -> None:
    if isinstance(node, dict):
        free_form = bool(where) and where[-1] in _FREE_FORM_MAPS
        for key, value in node.items():
            key_s = str(key)
            if not free_form and _looks_secret(key_s):
                problems.add_secret(
                    (*where, key_s),
                    "secrets do not belong in provision.yaml — remove the key and export AEP_CLIENT_SECRET / "
                    "DATABRICKS_TOKEN (or the backend's variable) instead",
                )
                continue
            reject_secrets(problems, value, (*where, key_s))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            reject_secrets(problems, item, (*where, i))
    elif isinstance(node, str):
        for pattern, what in _SECRET_VALUE_RES:
            if pattern.search(node):
                problems.add_secret(
                    where,
                    f"the value looks like {what} — secrets do not belong in provision.yaml; the tool fetches "
                    "the SAS token itself and reads others from the environment",
                )
                return


def require_nfc(problems: Problems, node: Any, where: tuple[Key, ...] = ()) -> None:
    """HCL normalises every string literal to Unicode NFC, so a decomposed value ("e" + U+0301)
    would reach Terraform as a different string than the one written: refuse it instead."""
    if isinstance(node, dict):
        for key, value in node.items():
            require_nfc(problems, key, where)
            require_nfc(problems, value, (*where, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            require_nfc(problems, item, (*where, i))
    elif isinstance(node, str) and not unicodedata.is_normalized("NFC", node):
        problems.add(
            where,
            "text is not in Unicode NFC form, which Terraform would silently change — write it with composed "
            "characters (e.g. 'é' as one character)",
        )


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_SECRETISH_KEYS:
        return False
    words = set(re.split(r"[_.\-]", lowered))
    return lowered in _SECRET_KEYS or bool(words & _SECRET_WORDS)


def check_env_name(problems: Problems, name: Any) -> bool:
    if not isinstance(name, str) or not ENV_NAME_RE.match(name) or name in RESERVED_NAMES:
        problems.add(
            ("environments", str(name)),
            "not a safe environment name — use a lower-case letter, then letters, digits, '-' or '_' (at most "
            "32; no '/', '..' or reserved words); it becomes a directory name",
        )
        return False
    return True


def check_clusters(problems: Problems, env: str | None, doc: Mapping[str, Any], overlay: Mapping[str, Any]) -> None:
    """Unique, unreserved names, a combination of settings Databricks accepts, and no Spark entry the
    tool manages. Runs beside the schema check, so it reads only what has the right shape."""
    clusters = doc.get("clusters")
    if not isinstance(clusters, list):
        return
    prefix: tuple[Key, ...] = ("environments", env) if env and "clusters" in overlay else ()
    seen: set[str] = set()
    for i, cluster in enumerate(clusters):
        if not isinstance(cluster, dict):
            continue
        at = (*prefix, "clusters", i)
        name = cluster.get("name")
        if isinstance(name, str):
            if name in RESERVED_NAMES:
                problems.add((*at, "name"), f"'{name}' is a reserved word — choose another name")
            elif name in seen:
                problems.add((*at, "name"), f"'{name}' appears twice — cluster names must be unique")
            seen.add(name)
        problem = cluster_problem(cluster)
        if problem is not None:
            problems.add((*at, problem[0]), problem[1])
        autoscale = cluster.get("autoscale")
        if isinstance(autoscale, dict):
            low, high = autoscale.get("min_workers"), autoscale.get("max_workers")
            if isinstance(low, int) and isinstance(high, int) and low > high:
                problems.add(
                    (*at, "autoscale"),
                    f"min_workers {low} is above max_workers {high} — make min_workers <= max_workers",
                )
        spark_conf = cluster.get("spark_conf")
        if isinstance(spark_conf, dict):
            for key in spark_conf:
                if isinstance(key, str) and key.startswith(SAS_CONF_PREFIX):
                    problems.add((*at, "spark_conf", key), _MANAGED_SAS_ENTRY)


# The entry's container and account come from AEP, so which key the tool will write is known
# only after the credentials call; that it owns every `fs.azure.sas.*` entry is known now.
_MANAGED_SAS_ENTRY = (
    f"{SAS_CONF_PREFIX}* entries are managed by dlz-provisioner (it writes "
    f"{SAS_CONF_PREFIX}<container>.<account>.blob.core.windows.net from AEP's DLZ credentials) — remove this key"
)
