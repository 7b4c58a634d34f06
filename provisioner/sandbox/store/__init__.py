"""The sandbox's persisted world: AEP landing zones, Databricks workspaces, fault knobs.

One JSON state file under a lock (`base`); one mixin per part of the world, each in its
own module. `SandboxStore` is all of them together.
"""

from __future__ import annotations

from provisioner.sandbox.store.acls import AclStore
from provisioner.sandbox.store.base import (
    DEFAULT_CLUSTER_START_SECONDS,
    DEFAULT_FAULTS,
    START_SECONDS_ENV,
    DatabricksError,
    State,
)
from provisioner.sandbox.store.clusters import SANDBOX_USER, ClusterStore
from provisioner.sandbox.store.connections import ConnectionStore
from provisioner.sandbox.store.directory import DirectoryStore
from provisioner.sandbox.store.dlz import (
    CREDENTIAL_TYPES,
    DATABRICKS_SOURCE,
    DLZ_VALID_DAYS,
    SAS_PERMISSIONS,
    DlzStore,
    new_sas_token,
    policy_window,
    sas_fields,
    storage_account_name,
)
from provisioner.sandbox.store.execution import ExecutionStore
from provisioner.sandbox.store.faults import AepFault, FaultStore
from provisioner.sandbox.store.identities import IdentityStore
from provisioner.sandbox.store.objects import ObjectStore
from provisioner.sandbox.store.pinning import PinStore
from provisioner.sandbox.store.policies import PolicyStore
from provisioner.sandbox.store.secrets import SecretStore
from provisioner.sandbox.store.tokens import TokenStore

__all__ = [
    "CREDENTIAL_TYPES",
    "DATABRICKS_SOURCE",
    "DEFAULT_CLUSTER_START_SECONDS",
    "DEFAULT_FAULTS",
    "DLZ_VALID_DAYS",
    "SANDBOX_USER",
    "SAS_PERMISSIONS",
    "START_SECONDS_ENV",
    "AepFault",
    "DatabricksError",
    "SandboxStore",
    "State",
    "new_sas_token",
    "policy_window",
    "sas_fields",
    "storage_account_name",
]


class SandboxStore(
    DlzStore,
    ClusterStore,
    PinStore,
    PolicyStore,
    SecretStore,
    AclStore,
    ConnectionStore,
    ExecutionStore,
    FaultStore,
    IdentityStore,
    DirectoryStore,
    TokenStore,
    ObjectStore,
):
    """The sandbox's state file; every public method is one locked transaction."""
