"""The sandbox behind the `Target` seam: emulator endpoints, throwaway credentials, the
provider mirror for Terraform, and the store's DLZ oracle. See provisioner/run/target.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.config.model import AepSettings, Config, Environment
from provisioner.sandbox import SERVER_ENV, Sandbox, workspace_key

if TYPE_CHECKING:
    from provisioner.aep.client import AepSecrets
    from provisioner.secret import Secret


class SandboxTarget:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def aep_settings(self, env: Environment) -> AepSettings:
        return dataclasses.replace(env.aep, platform_url=self.sandbox.platform_url, ims_url=self.sandbox.ims_url)

    def aep_secrets(self) -> AepSecrets:
        from provisioner.aep.client import AepSecrets

        return AepSecrets(client_secret=self.sandbox.client_secret, access_token=None)

    def workspace_url(self, host: str) -> str:
        return self.sandbox.workspace_url(host)

    def databricks_credentials(self) -> Mapping[str, Secret]:
        return self.sandbox.supplied_credentials

    def terraform_env(self) -> Mapping[str, str]:
        return self.sandbox.terraform_env()

    def shares_plugin_cache(self) -> bool:
        return False  # providers come from the read-only mirror

    def provider_lock_file(self, constraint: str) -> str | None:
        return self.sandbox.provider_lock_file(constraint)

    def init_dir(self, root: Path) -> Path | None:
        return self.sandbox.init_dir(root)

    def expected_warnings(self) -> Mapping[str, str]:
        from provisioner.sandbox.mirror import DEV_OVERRIDES_WARNING

        # The CLI config's dev_overrides (mirror.py) make Terraform say so at every plan and apply.
        return dict([DEV_OVERRIDES_WARNING])

    def blob_routing(self) -> Mapping[str, str]:
        return self.sandbox.blob_hosts()

    def notices(self) -> list[str]:
        announcement = self.sandbox.dlz_announcement()
        return [announcement] if announcement else []

    def dlz_backend(self) -> str:
        return self.sandbox.dlz.name

    def warm_dlz(self) -> None:
        self.sandbox.warm_dlz()

    def dlz_access(self, env: Environment, cluster_ids: Mapping[str, str]) -> dict[str, bool | None] | None:
        """The store's oracle: one state-file read (this runs inside a rotation's revocation window)."""
        store, key = self.sandbox.store, workspace_key(env.databricks_host)
        reach = store.dlz_access_many(key, cluster_ids.values())
        running = {c["cluster_id"] for c in store.list_clusters(key) if c.get("state") == "RUNNING"}
        return {name: (reach[cid] if cid in running else None) for name, cid in cluster_ids.items()}


@contextmanager
def sandbox_for(
    config: Config, state_dir: Path, environ: Mapping[str, str], *, port: int = 0, workspace_ports: bool = False
) -> Iterator[Sandbox]:
    """Run the emulators for a config's environments, honouring credentials from `environ`:
    AEP_CLIENT_SECRET, DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET (registered as an
    OAuth M2M service principal), DATABRICKS_TOKEN (a user's PAT); throwaway ones otherwise;
    PROVISION_SANDBOX_SERVER: the URL of a running `provision sandbox serve` to use instead of
    serving the emulators in this process. `port` and `workspace_ports`: see `Sandbox`."""
    envs = list(config.environments.values())
    first = envs[0].aep
    client_id, client_secret = environ.get("DATABRICKS_CLIENT_ID"), environ.get("DATABRICKS_CLIENT_SECRET")
    with Sandbox(
        state_dir,
        workspace_hosts=sorted({e.databricks_host for e in envs}),
        client_id=first.client_id,
        org_id=first.org_id,
        client_secret=environ.get("AEP_CLIENT_SECRET") or None,
        databricks_token=environ.get("DATABRICKS_TOKEN") or None,
        databricks_client=(client_id, client_secret) if client_id and client_secret else None,
        served_at=environ.get(SERVER_ENV) or None,
        port=port,
        workspace_ports=workspace_ports,
    ) as sandbox:
        # Environments may use API clients of their own (an IMS client belongs to one org).
        for env in envs:
            if env.aep.client_id != first.client_id:
                sandbox.register_aep_client(env.aep.client_id, env.aep.org_id)
        yield sandbox
