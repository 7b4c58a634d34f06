"""The configuration model (`Config`, `Environment`, …) and `load_config`, which builds it.

load_config: read the YAML defensively (yaml_reader) → refuse secrets and non-NFC text
(checks) → merge each environment's overlay → validate the result against the JSON Schema
(schema) and what a schema cannot say (checks) → build the model. Every problem is found in
one pass (problems): one line each naming the file, its line, the key path and the fix.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.config import schema
from provisioner.config.checks import check_clusters, check_env_name, reject_secrets, require_nfc
from provisioner.config.problems import Problems
from provisioner.config.yaml_reader import read_yaml
from provisioner.errors import ConfigError

DEFAULT_PLATFORM_URL = "https://platform.adobe.io"
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
DEFAULT_SCOPE = "openid,session,AdobeID,read_organizations,additional_info.projectedProductContext"
DEFAULT_ENV = "default"


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
class AuthSettings:
    """`databricks.auth_type` / `databricks.profile`: which unified-auth method to use (both optional)."""

    auth_type: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class SasSettings:
    mode: str = "secret_scope"
    secret_scope: str = "aep-dlz"
    secret_key: str = "dlz-sas-token"
    warn_days: int = 7
    # False: secret_scope names a scope that exists already; the tool writes its secret but
    # Terraform never creates, changes or deletes the scope itself.
    manage_scope: bool = True
    # Principals (users, groups, service principal application ids) granted READ on the scope:
    # a cluster's owner needs READ to resolve the secret reference when the cluster starts.
    readers: tuple[str, ...] = ()
    # "users" gives every workspace user MANAGE on a scope this root creates (the only value
    # the API accepts; some pricing tiers require it); unset: the creator gets MANAGE.
    initial_manage_principal: str | None = None

    @property
    def secret_reference(self) -> str:
        """What a cluster's spark_conf holds in secret_scope mode; Databricks resolves it at cluster start."""
        return "{{secrets/" + self.secret_scope + "/" + self.secret_key + "}}"

    @property
    def secret(self) -> tuple[str, str] | None:
        """(scope, key) the clusters reference in secret_scope mode; None inline."""
        return (self.secret_scope, self.secret_key) if self.mode == "secret_scope" else None


@dataclass(frozen=True)
class ConnectionSettings:
    """`connection`: the PAT `provision connect` mints for AEP's base connection (never the run's own)."""

    # A quarter: long enough that a monthly rotation job has slack, short enough that a
    # forgotten token dies on its own. Databricks allows at most 730 (maxTokenLifetimeDays).
    token_lifetime_days: int = 90
    warn_days: int = 7


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
    # Not a provision.yaml key: set when the cluster's policy must fill in a required attribute
    # provision.yaml cannot express (provisioner/databricks/policies.py).
    apply_policy_default_values: bool | None = None


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
    databricks_auth: AuthSettings = AuthSettings()
    connection: ConnectionSettings = ConnectionSettings()


@dataclass(frozen=True)
class Config:
    path: Path
    environments: Mapping[str, Environment]

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
    """Read, merge and validate provision.yaml; raise ConfigErrors with a line for every problem."""
    environ = os.environ if environ is None else environ
    cfg_path = Path(path)
    file = read_yaml(cfg_path)
    raw = file.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path}: the file must be a YAML mapping with keys aep, databricks, clusters")
    problems = Problems(cfg_path)
    reject_secrets(problems, raw)
    require_nfc(problems, raw)

    overlays = raw.get("environments")
    base = {k: v for k, v in raw.items() if k != "environments"}
    merged: dict[str, tuple[dict[str, Any], Mapping[str, Any]]] = {}
    if overlays is None:
        merged = {DEFAULT_ENV: (base, {})}
    elif not isinstance(overlays, dict) or not overlays:
        problems.add(("environments",), "expected a mapping of environment name to overlay")
    else:
        for name, overlay in overlays.items():
            if not check_env_name(problems, name):
                continue
            overlay = overlay or {}
            if not isinstance(overlay, dict):
                problems.add(("environments", name), "expected a mapping (an overlay of top-level keys)")
            elif "environments" in overlay:
                problems.add(("environments", name, "environments"), "overlays cannot nest environments")
            else:
                merged[name] = (_deep_merge(base, overlay), overlay)

    for name, (doc, overlay) in merged.items():
        env_name = name if overlays is not None else None
        schema.validate(problems, env_name, doc, overlay)
        check_clusters(problems, env_name, doc, overlay)
    problems.raise_if_any(file.lines)
    envs = {name: _build_environment(cfg_path, name, doc, environ) for name, (doc, _) in merged.items()}
    return Config(path=cfg_path, environments=envs)


def _deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by the overlay."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build_environment(path: Path, name: str, doc: Mapping[str, Any], environ: Mapping[str, str]) -> Environment:
    aep = AepSettings(**doc["aep"])
    host = environ.get("DATABRICKS_HOST") or doc["databricks"]["host"]
    sas_doc = dict(doc.get("sas", {}))
    sas_doc["readers"] = tuple(dict.fromkeys(sas_doc.get("readers", ())))  # toset() in HCL: order kept, no repeats
    sas = SasSettings(**sas_doc)
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
        databricks_auth=AuthSettings(
            auth_type=doc["databricks"].get("auth_type"), profile=doc["databricks"].get("profile")
        ),
        connection=ConnectionSettings(**doc.get("connection", {})),
    )


def _build_cluster(doc: Mapping[str, Any]) -> ClusterSpec:
    fields_ = dict(doc)
    autoscale = fields_.pop("autoscale", None)
    # Left unset (None) unless the config says: pinned when the run's identity may pin
    # (provisioner/databricks/pinning.py `resolve_pins`, decided before rendering).
    return ClusterSpec(
        **{k: v for k, v in fields_.items() if k != "cluster_name"},
        cluster_name=fields_.get("cluster_name", fields_["name"]),
        autoscale=(autoscale["min_workers"], autoscale["max_workers"]) if autoscale else None,
    )
