"""Load provision.yaml, merge environment overlays and validate each result with a JSON Schema.

The schema (`provision.schema.json`, beside this file) is the single description of what a
valid environment looks like; this module only adds what a schema cannot say: secrets do
not belong in the file, YAML must be small and plain, and errors must read as one line that
names the file, the key path and what is expected.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from provisioner.cluster_rules import cluster_problem
from provisioner.errors import ConfigError

DEFAULT_PLATFORM_URL = "https://platform.adobe.io"
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
DEFAULT_SCOPE = "openid,session,AdobeID,read_organizations,additional_info.projectedProductContext"
DEFAULT_ENV = "default"
_SCHEMA_PATH = Path(__file__).with_name("provision.schema.json")

MAX_CONFIG_BYTES = 1 << 20  # a real provision.yaml is a few KiB
MAX_YAML_NODES = 200_000  # bounds alias expansion ("billion laughs")

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


@dataclass(frozen=True)
class AepSettings:
    org_id: str
    client_id: str
    sandbox: str
    platform_url: str = DEFAULT_PLATFORM_URL
    ims_url: str = DEFAULT_IMS_URL
    scope: str = DEFAULT_SCOPE
    timeout_seconds: float = 30.0
    retries: int = 5
    max_retry_seconds: float = 60.0


@dataclass(frozen=True)
class SasSettings:
    mode: str = "secret_scope"
    secret_scope: str = "aep-dlz"
    secret_key: str = "dlz-sas-token"
    warn_days: int = 7
    # False: secret_scope names a scope that exists already; the tool writes its secret but
    # Terraform never creates, changes or deletes the scope itself.
    manage_scope: bool = True


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    spark_version: str
    cluster_name: str
    node_type_id: str | None = None
    driver_node_type_id: str | None = None
    num_workers: int | None = None
    autoscale: tuple[int, int] | None = None
    autotermination_minutes: int | None = None
    data_security_mode: str | None = None
    single_user_name: str | None = None
    runtime_engine: str | None = None
    kind: str | None = None
    is_single_node: bool | None = None
    use_ml_runtime: bool | None = None
    policy_id: str | None = None
    is_pinned: bool | None = None
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    spark_env_vars: Mapping[str, str] = field(default_factory=dict)
    custom_tags: Mapping[str, str] = field(default_factory=dict)
    import_id: str | None = None


@dataclass(frozen=True)
class Backend:
    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """One environment, fully merged and validated: everything a render needs but the credentials."""

    name: str
    aep: AepSettings
    databricks_host: str
    sas: SasSettings
    clusters: tuple[ClusterSpec, ...]
    root_dir: Path
    backend: Backend
    # Workspace calls in flight at once; None: the default of provisioner/databricks/parallel.py.
    databricks_max_parallel: int | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    environments: Mapping[str, Environment]
    has_overlays: bool

    def select(self, env: str | None = None, all_envs: bool = False) -> list[Environment]:
        """The environments a command acts on; one unless `all_envs`."""
        if all_envs:
            return list(self.environments.values())
        if env is None:
            if len(self.environments) == 1:
                return list(self.environments.values())
            names = ", ".join(self.environments)
            raise ConfigError(
                f"{self.path}: several environments ({names}) — pick one with --env NAME or use --all-envs"
            )
        if env not in self.environments:
            names = ", ".join(self.environments)
            raise ConfigError(f"{self.path}: environments.{env}: no such environment — choose one of: {names}")
        return [self.environments[env]]


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, merge and validate provision.yaml; raise ConfigError with one line on any problem."""
    environ = os.environ if environ is None else environ
    cfg_path = Path(path)
    raw = _read_yaml(cfg_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path}: the file must be a YAML mapping with keys aep, databricks, clusters")
    _reject_secrets(cfg_path, raw, ())
    _require_nfc(cfg_path, raw, ())

    overlays = raw.get("environments")
    base = {k: v for k, v in raw.items() if k != "environments"}
    if overlays is None:
        merged = {DEFAULT_ENV: (base, {})}
    else:
        if not isinstance(overlays, dict) or not overlays:
            raise ConfigError(f"{cfg_path}: environments: expected a mapping of environment name to overlay")
        merged = {}
        for name, overlay in overlays.items():
            _check_env_name(cfg_path, name)
            overlay = overlay or {}
            if not isinstance(overlay, dict):
                raise ConfigError(f"{cfg_path}: environments.{name}: expected a mapping (an overlay of top-level keys)")
            if "environments" in overlay:
                raise ConfigError(f"{cfg_path}: environments.{name}.environments: overlays cannot nest environments")
            merged[name] = (_deep_merge(base, overlay), overlay)

    envs: dict[str, Environment] = {}
    for name, (doc, overlay) in merged.items():
        _validate(cfg_path, name if overlays is not None else None, doc, overlay)
        envs[name] = _build_environment(cfg_path, name, doc, environ)
    return Config(path=cfg_path, environments=envs, has_overlays=overlays is not None)


def _read_yaml(path: Path) -> Any:
    import yaml  # deferred: keeps `provision --help` fast

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found — pass --config PATH or create provision.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: file is {size} bytes; a provision.yaml must be under {MAX_CONFIG_BYTES} bytes")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start}) — save the file as UTF-8") from None

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = key_node.value
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise ConfigError(f"{path}:{line}: duplicate key '{key}' — each key may appear once")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        doc = yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    _bound_size(path, doc)
    return doc


def _bound_size(path: Path, doc: Any) -> None:
    """Refuse documents whose aliases expand to more nodes than any real config has."""
    budget = MAX_YAML_NODES
    stack = [doc]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{path}: the YAML expands to more than {MAX_YAML_NODES} values (alias bomb?) — simplify it"
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _reject_secrets(path: Path, node: Any, where: tuple[str, ...]) -> None:
    if isinstance(node, dict):
        free_form = bool(where) and where[-1] in _FREE_FORM_MAPS
        for key, value in node.items():
            key_s = str(key)
            if not free_form and _looks_secret(key_s):
                raise ConfigError(
                    f"{path}: {_dotted((*where, key_s))}: secrets do not belong in provision.yaml — "
                    "remove the key and export AEP_CLIENT_SECRET / DATABRICKS_TOKEN (or the backend's variable) instead"
                )
            _reject_secrets(path, value, (*where, key_s))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _reject_secrets(path, item, (*where, f"[{i}]"))
    elif isinstance(node, str):
        for pattern, what in _SECRET_VALUE_RES:
            if pattern.search(node):
                raise ConfigError(
                    f"{path}: {_dotted(where)}: the value looks like {what} — secrets do not belong in "
                    "provision.yaml; the tool fetches the SAS token itself and reads others from the environment"
                )


def _require_nfc(path: Path, node: Any, where: tuple[str, ...]) -> None:
    """HCL normalises every string literal to Unicode NFC, so a decomposed value ("e" + U+0301)
    would reach Terraform as a different string than the one written: refuse it instead."""
    if isinstance(node, dict):
        for key, value in node.items():
            _require_nfc(path, key, where)
            _require_nfc(path, value, (*where, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _require_nfc(path, item, (*where, f"[{i}]"))
    elif isinstance(node, str) and not unicodedata.is_normalized("NFC", node):
        raise ConfigError(
            f"{path}: {_dotted(where) or '(top level)'}: text is not in Unicode NFC form, which Terraform would "
            "silently change — write it with composed characters (e.g. 'é' as one character)"
        )


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_SECRETISH_KEYS:
        return False
    words = set(re.split(r"[_.\-]", lowered))
    return lowered in _SECRET_KEYS or bool(words & _SECRET_WORDS)


def _check_env_name(path: Path, name: Any) -> None:
    if not isinstance(name, str) or not ENV_NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ConfigError(
            f"{path}: environments.{name}: not a safe environment name — use a lower-case letter, then letters, "
            "digits, '-' or '_' (at most 32; no '/', '..' or reserved words); it becomes a directory name"
        )


def _deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by the overlay."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    # No check_schema() here: it cost ~50-100 ms on every run (bench/) for a file we ship;
    # tests/test_config.py checks the schema itself.
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _validate(path: Path, env: str | None, doc: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    key = _validation_key(doc)
    known = key is not None and _known_valid(key)
    if not known:
        _check_schema(path, env, doc, overlay)
    _check_cluster_names(path, env, doc, overlay)
    if not known:
        _remember_valid(key)  # only a document that passed every check; a rejected one writes nothing


def _validation_key(doc: Mapping[str, Any]) -> str | None:
    """A digest of (schema, document): validation is a pure function of both.

    None when the document holds non-JSON values (YAML dates, …): those must meet the schema
    every time, never share a digest with their string spelling.
    """
    try:
        canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    digest = hashlib.sha256(_SCHEMA_PATH.read_bytes())
    digest.update(b"\0" + canonical.encode("utf-8"))
    return digest.hexdigest()


def _valid_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlz-provisioner" / "valid-configs"


def _known_valid(key: str) -> bool:
    # Importing jsonschema costs ~140 ms, more than a tenth of a sandbox plan; a config
    # document that met this very schema before needs no second look.
    return (_valid_cache_dir() / key).is_file()


def _remember_valid(key: str | None) -> None:
    if key is None:
        return
    try:
        cache_dir = _valid_cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / key).touch()
    except OSError:
        pass  # a read-only home only costs the next run the full validation


def _check_schema(path: Path, env: str | None, doc: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(doc))
    if error is None:
        return
    keys = tuple(error.absolute_path)
    prefix = f"environments.{env}." if env and keys and _from_overlay(overlay, keys) else ""
    where = prefix + (_dotted(keys) if keys else "(top level)")
    raise ConfigError(f"{path}: {where}: {_explain(error)}")


def _from_overlay(overlay: Mapping[str, Any], keys: tuple[Any, ...]) -> bool:
    node: Any = overlay
    for key in keys:
        in_mapping = isinstance(node, Mapping) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if in_mapping or in_list:
            node = node[key]
        else:
            return False
    return True


def _explain(error: Any) -> str:
    """Turn a jsonschema error into 'what is wrong — what is expected'."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    described = schema.get("description")
    validator = error.validator
    instance = error.instance
    shown = json.dumps(instance, ensure_ascii=False, default=str) if not isinstance(instance, (dict, list)) else None
    if shown is not None and len(shown) > 60:
        shown = shown[:57] + '..."'
    if validator == "additionalProperties":
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"unknown key {', '.join(map(str, extra))} — allowed keys: {allowed}"
    if validator == "required":
        return f"{error.message.split(' is a required')[0]} is required here"
    if validator == "type":
        return f"{shown or type(instance).__name__} is the wrong type — expected {error.validator_value}"
    if validator == "pattern":
        expected = described or f"a value matching {error.validator_value}"
        return f"{shown} is not valid — expected {expected}"
    if validator == "enum":
        return f"{shown} is not allowed — expected one of {', '.join(map(str, error.validator_value))}"
    if validator == "const":
        return f"{shown} is not allowed — expected {error.validator_value!r}"
    if validator == "not":
        return "num_workers and autoscale exclude each other — set one"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems", "minLength", "maxLength"):
        return f"{shown or 'value'} is out of range ({validator} {error.validator_value})"
    if validator == "oneOf" and isinstance(instance, dict) and "type" in instance:
        return f"backend type {instance['type']!r} is unknown or its keys are wrong — expected local, azurerm or pg"
    return error.message


def _check_cluster_names(path: Path, env: str | None, doc: Mapping[str, Any], overlay: Mapping[str, Any]) -> None:
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


def _build_environment(path: Path, name: str, doc: Mapping[str, Any], environ: Mapping[str, str]) -> Environment:
    aep = AepSettings(**doc["aep"])
    host = environ.get("DATABRICKS_HOST") or doc["databricks"]["host"]
    sas = SasSettings(**doc.get("sas", {}))
    clusters = tuple(_build_cluster(c) for c in doc["clusters"])
    tf = doc.get("terraform", {})
    root_base = (path.parent / tf.get("dir", "terraform")).resolve()
    backend_doc = dict(tf.get("backend", {"type": "local"}))
    backend = Backend(type=backend_doc.pop("type"), settings=backend_doc)
    return Environment(
        name=name,
        aep=aep,
        databricks_host=host.rstrip("/"),
        sas=sas,
        clusters=clusters,
        root_dir=root_base / name,
        backend=backend,
        databricks_max_parallel=doc["databricks"].get("max_parallel"),
    )


def _build_cluster(doc: Mapping[str, Any]) -> ClusterSpec:
    fields_ = dict(doc)
    autoscale = fields_.pop("autoscale", None)
    return ClusterSpec(
        **{k: v for k, v in fields_.items() if k != "cluster_name"},
        cluster_name=fields_.get("cluster_name", fields_["name"]),
        autoscale=(autoscale["min_workers"], autoscale["max_workers"]) if autoscale else None,
    )


def _dotted(keys: tuple[Any, ...]) -> str:
    out = ""
    for key in keys:
        if isinstance(key, int) or (isinstance(key, str) and key.startswith("[")):
            out += f"[{key}]" if isinstance(key, int) else key
        else:
            out += ("." if out else "") + str(key)
    return out


def iter_clusters(envs: list[Environment]) -> Iterator[tuple[Environment, ClusterSpec]]:
    for env in envs:
        for cluster in env.clusters:
            yield env, cluster
