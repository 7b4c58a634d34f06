"""The provider block of the stand-in: same attributes as the real provider v1.99.0.

Every attribute of the block, with the environment, goes through unified-auth resolution
(auth.py: databricks-sdk's `Config`, which copies the real provider's rules — PAT, OAuth
M2M, Azure, OIDC, profiles, and the "more than one authorization method" conflict). Names,
types and sensitivity follow real_schema.json (checked by tests/sandbox/test_provider_contract.py).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tf.iface import Config, DataSource, Provider, Resource
from tf.schema import Attribute, Schema
from tf.types import Bool, Number, String
from tf.utils import Diagnostics

from provisioner.sandbox.provider.cluster import Cluster
from provisioner.sandbox.provider.cluster_policy import ClusterPolicy
from provisioner.sandbox.provider.data_sources import DATA_SOURCES
from provisioner.sandbox.provider.group import Group, GroupMember
from provisioner.sandbox.provider.instance_pool import InstancePool
from provisioner.sandbox.provider.library import Library
from provisioner.sandbox.provider.not_emulated import not_emulated_data_sources, not_emulated_resources
from provisioner.sandbox.provider.permissions import Permissions
from provisioner.sandbox.provider.secret import SecretResource
from provisioner.sandbox.provider.secret_acl import SecretAcl
from provisioner.sandbox.provider.secret_scope import SecretScope
from provisioner.sandbox.provider.sensitive import SENSITIVE_PROVIDER_ATTRIBUTES
from provisioner.sandbox.provider.snapshot import data_source_types, resource_types

if TYPE_CHECKING:
    from provisioner.sandbox.provider.client import Client

_BOOLS = ("azure_use_msi", "debug_headers", "experimental_is_unified_host", "skip_verify")
_NUMBERS = (
    "debug_truncate_bytes",
    "http_timeout_seconds",
    "oauth_callback_port",
    "rate_limit",
    "retry_timeout_seconds",
)
_STRINGS = (
    "account_id",
    "actions_id_token_request_token",
    "actions_id_token_request_url",
    "audience",
    "auth_type",
    "azure_client_id",
    "azure_client_secret",
    "azure_environment",
    "azure_login_app_id",
    "azure_tenant_id",
    "azure_workspace_resource_id",
    "client_id",
    "client_secret",
    "cluster_id",
    "config_file",
    "databricks_cli_path",
    "databricks_id_token_filepath",
    "google_credentials",
    "google_service_account",
    "host",
    "metadata_service_url",
    "oidc_token_env",
    "password",
    "profile",
    "serverless_compute_id",
    "token",
    "username",
    "warehouse_id",
    "workspace_id",
)


def _attribute(name: str) -> Attribute:
    kind = Bool() if name in _BOOLS else Number() if name in _NUMBERS else String()
    return Attribute(name, kind, optional=True, sensitive=name in SENSITIVE_PROVIDER_ATTRIBUTES)


class DatabricksProvider(Provider):
    def __init__(self, *, one_configuration: bool = False) -> None:
        self._block: dict[str, str | bool | int | float] = {}
        self._client: Client | None = None
        # Serving every instance of a command from one process (__main__.serve_one_command):
        # instances of two provider configurations (aliases) would share this object and its
        # client, which separate processes never do, so a second configuration is refused.
        self._one_configuration = one_configuration
        self._configured = False
        # Terraform creates resources in parallel: one client, made once (unified-auth
        # resolution is not safe to run twice at the same time).
        self._client_lock = threading.Lock()

    def get_model_prefix(self) -> str:
        return "databricks_"

    def full_name(self) -> str:
        return "registry.terraform.io/databricks/databricks"

    def get_provider_schema(self, diags: Diagnostics) -> Schema:
        return Schema(attributes=[_attribute(n) for n in sorted({*_STRINGS, *_BOOLS, *_NUMBERS})])

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        # Nothing is resolved here: like the real provider, missing or conflicting credentials
        # only fail once a resource needs the workspace (a plan with no resources still works).
        block = {k: v for k, v in config.items() if isinstance(v, str | bool | int | float)}
        if self._one_configuration and self._configured and block != self._block:
            diags.add_error(
                "one provider configuration per command",
                "The sandbox serves every provider instance of a command `provision` runs from one "
                "process, which holds one configuration; this root configures the provider twice "
                "(an alias). Run `terraform` yourself in it (`provision sandbox env`).",
            )
            return
        self._block, self._configured = block, True

    def client(self) -> Client:
        with self._client_lock:
            if self._client is None:
                # Imported here, not at module level: the SDK costs start-up time in every
                # provider process, and most of them (schema, validate) never call the API.
                from provisioner.sandbox.provider.auth import workspace_client

                self._client = workspace_client(self._block)
            return self._client

    def get_data_sources(self) -> list[type[DataSource]]:
        emulated: list[type[DataSource]] = list(DATA_SOURCES)
        names = {self.get_model_prefix() + d.get_name() for d in emulated}
        return [*emulated, *not_emulated_data_sources([t for t in data_source_types() if t not in names])]

    def get_resources(self) -> list[type[Resource]]:
        emulated: list[type[Resource]] = [
            Cluster,
            SecretScope,
            SecretResource,
            SecretAcl,
            Permissions,
            ClusterPolicy,
            Library,
            InstancePool,
            Group,
            GroupMember,
        ]
        names = {self.get_model_prefix() + r.get_name() for r in emulated}
        return [*emulated, *not_emulated_resources([t for t in resource_types() if t not in names])]
