"""Adopting an existing all-purpose cluster: its provision.yaml entry, and the edit that adds it.

`cluster_block` turns a `clusters/get` answer into the entry whose only planned change is the
DLZ SAS entry (plus the import): every field today's Compute UI and API set — `kind`,
`is_single_node`, `use_ml_runtime`, the `DATA_SECURITY_MODE_*` access modes with their
`single_user_name` — is copied; server defaults are left out.

The user's file is edited as text, not re-dumped: comments, order and formatting stay as
they were; only a new list item is inserted after the last one. PyYAML's node marks say
where that list ends and how it is indented. The result is validated with the normal
config loader before it replaces the file (atomically), so a failure leaves it untouched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.aep.sas import SAS_CONF_PREFIX
from provisioner.atomic import staged
from provisioner.config.cluster_rules import AUTO_MODE, DEDICATED_FIX
from provisioner.config.model import Config, Environment, load_config
from provisioner.databricks.access_mode import NO_SAS, NOT_FOR_RUN, judge
from provisioner.databricks.cluster_fields import MAP_FIELDS
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.databricks.workspace import WorkspaceError
from provisioner.errors import ConfigError, ProvisionError
from provisioner.run.context import RunContext, fetch_credentials, read_env_state, reload_config, render_env

if TYPE_CHECKING:
    from provisioner.databricks.workspace import WorkspaceClient

# Server-side defaults: writing them would only add noise (and a diff if the server changes them).
_DEFAULTS: dict[str, Any] = {"data_security_mode": "NONE", "runtime_engine": "STANDARD"}
_SCALARS = (
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "autotermination_minutes",
    "kind",
    "is_single_node",
    "use_ml_runtime",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "policy_id",
)


@dataclass(frozen=True)
class Adopted:
    name: str  # its name in provision.yaml
    cluster_id: str
    pinned: bool


def adopt_into_config(
    ctx: RunContext, env: Environment, cluster_id: str, name: str | None, warn: Callable[[str], None]
) -> Adopted:
    """Read the cluster, check it may be adopted, and append its entry to provision.yaml."""

    info = read_cluster(ctx, env, cluster_id)
    refuse_managed(ctx, env, cluster_id)
    judge_access_mode(ctx, env, info, warn)
    name = name or name_from(info)
    # It is about to reference the SAS secret: its owner must be able to read it.
    check_owners_can_read(
        ctx.workspace_client(env), env, {name: cluster_id}, warn, functools.partial(ctx.identity, env)
    )
    pinned = is_pinned(ctx.workspace_client(env), cluster_id)
    block = cluster_block(info, name, env, pinned)
    append_to_config(ctx.config.path, env, block)
    return Adopted(block["name"], cluster_id, pinned)


def render_adopted(ctx: RunContext, env: Environment) -> Config:
    """Reload provision.yaml and render the environment, so its root (imports.tf) has the new cluster."""
    fresh = reload_config(ctx)
    new_env = fresh.environments[env.name]
    render_env(ctx, new_env, fetch_credentials(ctx, new_env))
    return fresh


def read_cluster(ctx: RunContext, env: Environment, cluster_id: str) -> dict[str, Any]:

    client = ctx.workspace_client(env)
    try:
        info: dict[str, Any] = client.get_cluster(cluster_id)
    except WorkspaceError as exc:
        if exc.not_found:
            raise ProvisionError(
                f"--cluster-id {cluster_id}: no such cluster in {env.databricks_host} — copy the id from the "
                "cluster's page (Compute → cluster → Tags / JSON)"
            ) from None
        raise ProvisionError(f"cannot read cluster {cluster_id} from {env.databricks_host}: {exc.message}") from None
    if info.get("cluster_source") == "JOB":
        raise ProvisionError(
            f"--cluster-id {cluster_id}: a job cluster — AEP needs an all-purpose (interactive) cluster; "
            "adopt one created from Compute, or let `provision apply` create one"
        )
    return info


def judge_access_mode(ctx: RunContext, env: Environment, info: dict[str, Any], warn: Callable[[str], None]) -> None:
    """Before anything is written: a cluster whose Spark-config SAS would not be used is refused; one
    this run's principal cannot use is adopted with a line saying so (provisioner.databricks.access_mode)."""
    mode = info.get("data_security_mode")
    found = judge(mode, info.get("single_user_name"), ctx.identity(env))
    if found is None:
        return
    where = f"--cluster-id {info['cluster_id']}"
    if found.kind == NO_SAS or mode == AUTO_MODE:
        raise ProvisionError(
            f"{where}: {found.reason} — switch it to {DEDICATED_FIX} (Compute → the cluster → Edit → Access mode), "
            "then adopt it; nothing was adopted"
        )
    if found.kind == NOT_FOR_RUN:
        warn(
            f"{where}: {found.reason} — its owner can set single_user_name to {ctx.identity(env).user_name}; or "
            f"{info.get('single_user_name')} runs `provision connect` for it (and this run's probe is skipped)"
        )
    else:
        warn(f"{where}: {found.reason} — `provision verify` shows whether AEP can reach it once adopted")


def refuse_managed(ctx: RunContext, env: Environment, cluster_id: str) -> None:
    for spec in env.clusters:
        if spec.import_id == cluster_id:
            raise ConfigError(f"{ctx.config.path}: clusters.{spec.name} already adopts {cluster_id}")
    for name, cid in read_env_state(ctx, env).clusters().items():
        if cid == cluster_id:
            raise ConfigError(f"--cluster-id {cluster_id}: already managed as clusters.{name}")


def is_pinned(client: WorkspaceClient, cluster_id: str) -> bool:
    # clusters/get does not say; clusters/list filtered on is_pinned does.
    return any(c.get("cluster_id") == cluster_id for c in client.list_clusters(pinned_only=True))


def name_from(info: dict[str, Any]) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", str(info.get("cluster_name") or "").lower()).strip("-_")
    if not slug or not slug[0].isalpha():
        slug = "adopted-" + slug if slug else "adopted"
    return slug[:63]


def cluster_block(info: dict[str, Any], name: str, env: Environment, pinned: bool = True) -> dict[str, Any]:
    """The provision.yaml entry matching the live cluster, so the only planned change is the SAS entry."""
    if any(c.name == name for c in env.clusters):
        raise ConfigError(f"--name {name}: a cluster of that name is already configured — pass another --name")
    block: dict[str, Any] = {"name": name}
    for key in _SCALARS:
        value = info.get(key)
        if value in (None, "") or (key in _DEFAULTS and _DEFAULTS[key] == value):
            continue
        if key == "driver_node_type_id" and value == info.get("node_type_id"):
            continue
        block[key] = value
    if info.get("autoscale"):
        scale = info["autoscale"]
        block["autoscale"] = {"min_workers": scale["min_workers"], "max_workers": scale["max_workers"]}
    elif not info.get("is_single_node"):
        block["num_workers"] = int(info.get("num_workers") or 0)
    for key in MAP_FIELDS:
        values = dict(info.get(key) or {})
        if key == "spark_conf":
            # The SAS entry is ours to manage (and may hold a token): never copied into the file.
            values = {k: v for k, v in values.items() if not k.startswith(SAS_CONF_PREFIX)}
        if values:
            block[key] = values
    if not pinned:
        # Kept as found, so the import plans no change but the SAS entry; `adopt` says how to pin it.
        block["is_pinned"] = False
    block["import_id"] = str(info["cluster_id"])
    return block


# ---- editing provision.yaml as text --------------------------------------------------------


def append_to_config(path: Path, env: Environment, block: dict[str, Any]) -> None:
    import yaml

    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    seq = _clusters_node(path, root, env)
    if seq.flow_style or not seq.value:
        raise ConfigError(
            f"{path}: the clusters list is empty or written inline ([...]) — write it as a block list to adopt into"
        )
    dash_col = seq.start_mark.column
    lines = text.splitlines(keepends=True)
    insert_at = _line_after(lines, seq.value[-1])
    dumped = yaml.safe_dump([block], sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    new_lines = [(" " * dash_col + line if line.strip() else line) for line in dumped.splitlines(keepends=True)]
    if insert_at > 0 and insert_at <= len(lines) and not lines[insert_at - 1].endswith("\n"):
        lines[insert_at - 1] += "\n"
    updated = "".join(lines[:insert_at] + new_lines + lines[insert_at:])
    _replace_validated(path, updated, env, block["name"])


def _line_after(lines: list[str], node: Any) -> int:
    """The line index just after `node`: its end mark sits on the next token, maybe indented."""
    end = node.end_mark
    if end.line >= len(lines):
        return len(lines)
    at: int = end.line if lines[end.line][: end.column].strip() == "" else end.line + 1
    # Blank lines and comments before the next key belong to what follows, not to the list.
    while at - 1 > node.start_mark.line and (lines[at - 1].strip() == "" or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    return at


def _clusters_node(path: Path, root: Any, env: Environment) -> Any:
    import yaml

    def child(node: Any, key: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    return v
        return None

    envs = child(root, "environments")
    if envs is None:
        seq = child(root, "clusters")
    else:
        seq = child(child(envs, env.name), "clusters")
        if seq is None:
            raise ConfigError(
                f"{path}: environments.{env.name} has no clusters list of its own and the shared one is used by "
                f"every environment — add `clusters:` under environments.{env.name} (a cluster id belongs to one "
                "workspace), then adopt again"
            )
    if not isinstance(seq, yaml.SequenceNode):
        raise ConfigError(f"{path}: clusters: expected a list")
    return seq


def _replace_validated(path: Path, text: str, env: Environment, name: str) -> None:
    with staged(path, text, mode=path.stat().st_mode & 0o777) as tmp:
        try:
            config = load_config(tmp, environ={})
        except ConfigError as exc:
            raise ConfigError(f"{str(exc).replace(str(tmp), str(path))} (adopting wrote nothing)") from None
        if not any(c.name == name for c in config.environments[env.name].clusters):
            raise ConfigError(f"{path}: the adopted cluster did not land in environment {env.name} — edit by hand")
