"""`provision envs`: the environments of provision.yaml as a CI matrix, optionally only the changed ones.

The CI system the team already runs (a GitHub Actions matrix, an Azure DevOps strategy
matrix) is the distributed engine: each job plans one environment. This module only says
which environments there are and, with `--changed-since REF`, which of them a change since
REF can affect — so a pull request that touches no environment plans nothing.

An environment counts as changed when any of these differ between REF and the work tree:
- its effective configuration (provision.yaml with its overlay merged and validated);
- its rendered root, rendered in memory from both revisions' templates (when the templates
  live in the same repository — a checkout of this tool — else from the installed ones) with
  the same placeholder DLZ target, so no AEP call is needed and the token plays no part;
- the files committed under its root (`terraform/<env>/`), e.g. a hand-edited or re-rendered root.
A config that did not exist (or did not load) at REF makes every environment changed.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import git
from provisioner.config.model import Config, Environment, load_config
from provisioner.errors import ConfigError, ProvisionError
from provisioner.render.root import DlzTarget, render_root, templates_dir

# The DLZ target comes from AEP at plan time; comparing two renderings needs only the same one.
_PLACEHOLDER = DlzTarget("dlz-container", "dlzaccount")


@dataclass(frozen=True)
class EnvRow:
    """One matrix entry. Keys are camelCase in JSON, as in our other documents."""

    env: str
    aep_sandbox: str
    workspace_host: str
    backend: str

    def to_json(self) -> dict[str, str]:
        return {
            "env": self.env,
            "aepSandbox": self.aep_sandbox,
            "workspaceHost": self.workspace_host,
            "backend": self.backend,
        }


def rows(envs: list[Environment]) -> list[EnvRow]:
    return [EnvRow(e.name, e.aep.sandbox, e.databricks_host, e.backend.type) for e in envs]


def github_matrix(rows_: list[EnvRow]) -> dict[str, Any]:
    """`strategy.matrix: ${{ fromJSON(...) }}`: one job per `include` entry (`matrix.env`, …)."""
    return {"include": [r.to_json() for r in rows_]}


def azure_devops_matrix(rows_: list[EnvRow]) -> dict[str, Any]:
    """`strategy.matrix: $[ ... ]`: job name → variables (`$(env)`, also `$ENV` in scripts)."""
    return {r.env: r.to_json() for r in rows_}


def changed_since(config: Config, ref: str, environ: Mapping[str, str]) -> list[Environment]:
    """The environments that a change between `ref` and the work tree can affect."""
    top = git.toplevel(config.path.resolve())
    if top is None:
        raise ConfigError(f"--changed-since {ref}: {config.path} is not in a git repository (or git is missing)")
    commit = git.resolve_ref(top, ref)
    with tempfile.TemporaryDirectory(prefix="provision-envs-") as scratch:
        old_envs = _old_environments(config, top, commit, Path(scratch), environ)
        old_templates = _old_templates(top, commit, Path(scratch) / "templates")
        envs = config.environments.values()
        return [env for env in envs if _changed(config, env, old_envs, old_templates, top, commit)]


def _changed(
    config: Config,
    env: Environment,
    old_envs: Mapping[str, Environment] | None,
    old_templates: Path | None,
    top: Path,
    commit: str,
) -> bool:
    if old_envs is None or env.name not in old_envs:
        return True
    old = old_envs[env.name]
    if old != env:
        return True
    if git.changed_files(top, commit, env.root_dir):
        return True
    try:
        now = render_root(env, _PLACEHOLDER, config.path).files
    except ProvisionError:
        return True  # plan will report it: that environment needs a look
    try:
        then = render_root(old, _PLACEHOLDER, config.path, templates=old_templates).files
    except ProvisionError:
        return True
    return dict(now) != dict(then)


def _old_environments(
    config: Config, top: Path, commit: str, scratch: Path, environ: Mapping[str, str]
) -> dict[str, Environment] | None:
    """The environments provision.yaml defined at `commit`, placed as if it were the work tree's file."""
    content = git.show(top, commit, config.path)
    if content is None:
        return None
    old_path = scratch / "config" / config.path.name
    old_path.parent.mkdir(parents=True)
    old_path.write_bytes(content)
    try:
        old = load_config(old_path, environ=environ)
    except ProvisionError:
        return None
    here = config.path.resolve().parent
    moved = {}
    for name, env in old.environments.items():
        # Roots are resolved relative to the config file: re-anchor them at the real one.
        relative = os.path.relpath(env.root_dir, old_path.parent.resolve())
        moved[name] = dataclasses.replace(env, root_dir=(here / relative).resolve())
    return moved


def _old_templates(top: Path, commit: str, into: Path) -> Path | None:
    """The templates directory at `commit` when it is part of this repository, else None (installed ones)."""
    current = templates_dir()
    if git.toplevel(current) != top:
        return None
    exported = git.export(top, commit, current, into)
    return exported if exported is not None and exported.is_dir() else into / "missing"
