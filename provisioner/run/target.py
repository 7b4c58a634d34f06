"""Where a run's outside world is: the real AEP, IMS and workspaces, or the offline sandbox.

This is the one seam between product code and the sandbox. A command gets a `Target` from
`workflow.open_context` and never asks which one it is: endpoints, the credentials a target
supplies itself, what Terraform's environment needs and whether there is an oracle for DLZ
access all come from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from provisioner.cache_dir import tool_cache_dir
from provisioner.config.model import AepSettings, Environment
from provisioner.databricks.workspace import normalize_host

if TYPE_CHECKING:
    from provisioner.aep.client import AepSecrets
    from provisioner.secret import Secret


class Target(Protocol):
    def aep_settings(self, env: Environment) -> AepSettings:
        """The AEP/IMS endpoints to call for an environment."""

    def aep_secrets(self) -> AepSecrets:
        """The IMS client secret (or a ready access token)."""

    def workspace_url(self, host: str) -> str:
        """Where to send calls for a configured workspace host."""

    def databricks_credentials(self) -> Mapping[str, Secret]:
        """Credentials the target itself supplies, by environment name (the sandbox's throwaway PAT)."""

    def terraform_env(self) -> Mapping[str, str]:
        """Non-secret additions to Terraform's environment (plugin cache, provider mirror)."""

    def shares_plugin_cache(self) -> bool:
        """Whether concurrent inits must take turns (a shared TF_PLUGIN_CACHE_DIR is not safe)."""

    def provider_lock_file(self, constraint: str) -> str | None:
        """The `.terraform.lock.hcl` a root whose provider is pinned to `constraint` starts from,
        when the target knows it ahead of init."""

    def init_dir(self, root: Path) -> Path | None:
        """Where `terraform init` runs for a root and keeps its lock file, when not in the root
        itself (provisioner/terraform/init.py): a target whose provider is not the registry's
        must neither read nor write the lock file a user commits."""

    def expected_warnings(self) -> Mapping[str, str]:
        """Terraform warnings this target causes by design, not shown: summary line → the last
        line of the warning's body."""

    def blob_routing(self) -> Mapping[str, str]:
        """Where storage hosts are served (see provisioner/reach/endpoint.py): empty for Azure itself."""

    def notices(self) -> list[str]:
        """Lines to tell the user once when a run starts (e.g. which DLZ the sandbox uses)."""

    def dlz_backend(self) -> str:
        """What answers for the landing zone's storage: `azure`, or the sandbox's `azurite` / `oracle`."""

    def warm_dlz(self) -> None:
        """Start whatever serves the landing zone ahead of a DLZ check (no-op where it is always there)."""

    def dlz_access(self, env: Environment, cluster_ids: Mapping[str, str]) -> dict[str, bool | None] | None:
        """Name → whether the RUNNING cluster reaches its DLZ right now (None: not running), if this
        target can tell without asking the clusters; None when it cannot (real workspaces)."""


class RealTarget:
    """AEP, IMS and the workspaces at the addresses provision.yaml names."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def aep_settings(self, env: Environment) -> AepSettings:
        return env.aep

    def aep_secrets(self) -> AepSecrets:
        from provisioner.aep.client import AepSecrets

        return AepSecrets.from_environ(self._environ)

    def workspace_url(self, host: str) -> str:

        return normalize_host(host)

    def databricks_credentials(self) -> Mapping[str, Secret]:
        return {}

    def terraform_env(self) -> Mapping[str, str]:
        cache_dir = plugin_cache_dir(self._environ)
        return {"TF_PLUGIN_CACHE_DIR": str(cache_dir)} if cache_dir is not None else {}

    def shares_plugin_cache(self) -> bool:
        return True

    def provider_lock_file(self, constraint: str) -> str | None:
        return None  # `terraform init` writes it from the registry's answers

    def init_dir(self, root: Path) -> Path | None:
        return None  # init runs in the root and writes the lock file users commit

    def expected_warnings(self) -> Mapping[str, str]:
        return {}

    def blob_routing(self) -> Mapping[str, str]:
        return {}

    def notices(self) -> list[str]:
        return []

    def dlz_backend(self) -> str:
        return "azure"

    def warm_dlz(self) -> None:
        return None

    def dlz_access(self, env: Environment, cluster_ids: Mapping[str, str]) -> dict[str, bool | None] | None:
        return None


def plugin_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """Providers are downloaded once per machine, not once per environment."""
    if environ.get("TF_PLUGIN_CACHE_DIR"):
        return Path(environ["TF_PLUGIN_CACHE_DIR"])

    path = tool_cache_dir(environ) / "plugins"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path
