"""What a cluster's access mode lets the run — and the AEP connection it mints — do with the DLZ SAS.

A cluster AEP writes to is useful only if (a) its Spark config's `fs.azure.sas.*` entry is what
dbutils/Spark use for the container and (b) the principal behind AEP's connection, and the
run's own probe (`verify`), may run commands on it. `judge` answers both for one cluster and
the run's identity, before anything changes: `plan`/`apply` on the configured clusters (after
their policies), `adopt` on the live cluster, `verify` (and the probe closing `apply`/`rotate`)
on the live cluster before any command runs there.

Sources, per mode (enum values: databricks-sdk-py `service/compute.py` `DataSecurityMode`;
provider `docs/resources/cluster.md` `data_security_mode`, `single_user_name`):
- dedicated (`DATA_SECURITY_MODE_DEDICATED`, legacy alias `SINGLE_USER`): "can only be
  exclusively used by a single user specified in single_user_name" (SDK); with `kind` it may
  name a group ("user name of the user (or group name if `kind` if specified)", provider docs),
  whose members may use it (Databricks "Dedicated group access",
  https://docs.databricks.com/compute/group-access.html). The probe runs as the run's
  principal, and the connection's token is a PAT minted by whoever runs `provision connect`
  (provisioner/operations/connect.py), so on a cluster dedicated to someone else neither can
  run anything. The SAS itself still lands on the cluster, and a connection made by the
  assigned user (their own `provision connect`) works: `plan`/`apply`/`adopt` say so and go on;
  `verify` does not run a probe that cannot run, and says why (exit 1: a probe could not run).
  Group membership is SCIM `Me`'s direct groups; groups nested in groups are not expanded (as
  in provisioner/databricks/preflight.py), so membership only through a nested group reads as
  none — a warning, or a cluster verify could not prove, never a false "works".
- standard (`DATA_SECURITY_MODE_STANDARD`, `USER_ISOLATION`): "DBUtils and other clients can
  only read from cloud storage using an external location" (Microsoft Learn, "Standard compute
  requirements and limitations"): the SAS entry is not used. provision.yaml cannot ask for it
  (provisioner/config/cluster_rules.py); a policy that fixes it, or a live cluster (adopt,
  verify), is refused here — nothing rendered for it, nothing adopted, no probe.
- `DATA_SECURITY_MODE_AUTO`: Databricks chooses; standard unless an ML runtime, a GPU node type
  or a runtime below 14.3 (Microsoft Learn, "Dedicated compute overview"). Refused the same
  way when configured (or fixed by a policy). A live cluster reporting it is probed: the probe
  shows what Databricks chose; the line says what it may mean.
- `LEGACY_TABLE_ACL`, `LEGACY_PASSTHROUGH`, `LEGACY_SINGLE_USER`, `LEGACY_SINGLE_USER_STANDARD`:
  deprecated from Databricks Runtime 15.0 (SDK). No source the project has says whether a
  cluster-level `fs.azure.sas.*` key is honoured there (on table-ACL clusters direct file access
  needs the `ANY FILE` privilege: Databricks "What is the ANY FILE securable?"), so they are
  neither refused nor passed: one line says so, and `verify`'s probe is the proof.
- `NONE`, `NO_ISOLATION`, unset: credentials in the cluster's Spark config "are available to all
  users with access to that cluster" (Databricks "Connect to Azure Blob Storage with WASB").

The workspace emulator keeps its own copy of the dedicated/standard rule
(provisioner/sandbox/command_execution.py); tests/databricks/test_access_mode.py holds the two
equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.config.cluster_rules import (
    AUTO_MODE,
    AUTO_REASON,
    DEDICATED_FIX,
    DEDICATED_MODES,
    STANDARD_MODES,
    STANDARD_REASON,
)

if TYPE_CHECKING:
    from provisioner.config.model import Environment
    from provisioner.databricks.identity import Identity

LEGACY_MODES = frozenset(
    {"LEGACY_TABLE_ACL", "LEGACY_PASSTHROUGH", "LEGACY_SINGLE_USER", "LEGACY_SINGLE_USER_STANDARD"}
)

# What a finding means for the cluster.
NOT_FOR_RUN = "not_for_run"  # the run's principal (probe, minted connection token) cannot run commands there
NO_SAS = "no_sas"  # the Spark-config SAS is not used: nobody's ingestion works
UNSURE = "unsure"  # no source settles it: the probe decides


@dataclass(frozen=True)
class Finding:
    kind: str
    reason: str  # one line, no cluster name, no secret

    @property
    def blocks_probe(self) -> bool:
        """The probe would fail for a reason known now: it is not run."""
        return self.kind in (NOT_FOR_RUN, NO_SAS)


def judge(mode: str | None, single_user_name: str | None, identity: Identity) -> Finding | None:
    """What `mode` (with its `single_user_name`) means for the run's identity; None when it works."""
    if mode in STANDARD_MODES:
        return Finding(NO_SAS, f"{mode}: {STANDARD_REASON}")
    if mode == AUTO_MODE:
        return Finding(UNSURE, AUTO_REASON)
    if mode in LEGACY_MODES:
        return Finding(
            UNSURE,
            f"{mode} is a legacy access mode (deprecated from Databricks Runtime 15.0) and no documentation says "
            "whether it honours a Spark-config SAS",
        )
    if mode in DEDICATED_MODES and single_user_name and not _assigned_to(single_user_name, identity):
        who = (
            identity.user_name
            if identity.user_name == identity.principal
            else f"{identity.user_name} ({identity.principal})"
        )
        return Finding(
            NOT_FOR_RUN,
            f"dedicated ({mode}) to {single_user_name}, and this run is {who}: only {single_user_name} (or its "
            f"members, for a group) may run commands there, so the DLZ probe cannot run and an AEP connection whose "
            f"token is {identity.user_name}'s (`provision connect` run as it) cannot use the cluster",
        )
    return None


def _assigned_to(single_user_name: str, identity: Identity) -> bool:
    # `users` holds every workspace user and is not listed by SCIM Me (as preflight.py reads ACLs).
    return single_user_name in (identity.user_name, *identity.groups, "users")


@dataclass(frozen=True)
class EnvFindings:
    refusals: tuple[str, ...]  # one line per cluster that cannot work for anyone
    warnings: tuple[str, ...]  # one line per cluster that will not work for this run, or may not work


def judge_environment(env: Environment, identity: Identity) -> EnvFindings:
    """Every configured cluster of `env` (as its policies make it) judged for the run's identity."""
    refusals: list[str] = []
    warnings: list[str] = []
    for cluster in env.clusters:
        found = judge(cluster.data_security_mode, cluster.single_user_name, identity)
        if found is None:
            continue
        where = f"{env.name}: clusters.{cluster.name}"
        if found.kind == NO_SAS or (found.kind == UNSURE and cluster.data_security_mode == AUTO_MODE):
            # provision.yaml cannot ask for these (config/cluster_rules.py): its policy fixed the mode.
            refusals.append(
                f"{where}: data_security_mode (fixed by cluster policy {cluster.policy_id}): {found.reason} — use a "
                f"policy that lets you {DEDICATED_FIX}; nothing was changed"
            )
        elif found.kind == NOT_FOR_RUN:
            warnings.append(
                f"{where}: {found.reason} — set single_user_name: {identity.user_name} to use it from this run, "
                f"or have {cluster.single_user_name} run `provision connect` (and skip this run's probe: --no-verify)"
            )
        else:
            warnings.append(f"{where}: {found.reason} — `provision verify` shows whether AEP can reach it")
    return EnvFindings(tuple(refusals), tuple(warnings))
