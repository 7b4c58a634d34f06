"""A rotation's pre-flight: everything that can fail is tried before AEP revokes the token.

The mode's own checks come first (`SasMode.prepare`: secret_scope checks the scope — exists,
Databricks-backed, READ; inline plans with the current token — provider, backend, pending
changes besides the token), then every managed cluster here: readable, the identity may
restart it, its owner can resolve the secret, and which are running (the window restarts
those). What it finds is `Prepared`; the window itself is provisioner.operations.rotate.rotation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.console import Console
from provisioner.databricks.cluster_reads import read_clusters
from provisioner.databricks.cluster_state import cluster_gone, last_start_ms
from provisioner.databricks.ownership import check_owners_can_read
from provisioner.databricks.workspace import WorkspaceError, said
from provisioner.errors import ProvisionError
from provisioner.run.context import RunContext, check_workspace_access

if TYPE_CHECKING:
    from provisioner.config.model import Environment


@dataclass(frozen=True)
class Rotation:
    """One rotation request: which environment, how to ask, how to finish if it fails."""

    env: Environment
    auto_approve: bool
    timeout: float
    resume_command: str  # printed whenever the old token is gone and something failed


@dataclass(frozen=True)
class Prepared:
    cluster_ids: dict[str, str]  # resource name -> cluster id
    seen_starts: dict[str, int]  # running clusters -> their last start (ms), before the refresh
    # The running clusters as read then: in secret_scope mode nothing changes them before the
    # restarts, so the window restarts them without reading each again (converge `known`).
    seen_running: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_clusters(ctx: RunContext, env: Environment, cluster_ids: dict[str, str], console: Console) -> Prepared:
    """Every managed cluster readable and restartable by this identity, its owner able to
    resolve the secret; which are running (the window restarts those)."""
    # The identity restarts clusters right after the refresh: fail now if it may not.
    check_workspace_access(ctx, env, cluster_ids)
    reads = read_clusters(ctx.workspace_client(env), env, cluster_ids)
    running: dict[str, dict[str, Any]] = {}
    for name, cid in sorted(cluster_ids.items()):
        info = reads.clusters[cid]
        if isinstance(info, WorkspaceError):
            if not cluster_gone(info):
                raise ProvisionError(f"{env.name}: cannot read cluster {name} ({cid}): {said(info)}")
            # Deleted, or purged 30 days after an unpinned termination (provisioner/databricks/pinning.py).
            console.warn(f"{env.name}: cluster {name} ({cid}) no longer exists — `provision apply` re-creates it")
            cluster_ids = {n: c for n, c in cluster_ids.items() if n != name}
        elif info.get("state") == "RUNNING":
            running[name] = info
    # The restarts after the refresh resolve the secret as each cluster's owner (secret_scope mode).
    known = {cid: info for cid, info in reads.clusters.items() if not isinstance(info, WorkspaceError)}
    check_owners_can_read(
        ctx.workspace_client(env), env, cluster_ids, console.warn, functools.partial(ctx.identity, env), known
    )
    console.info(f"{env.name}: ready — {len(cluster_ids)} managed cluster(s), {len(running)} running")
    return Prepared(cluster_ids, {name: last_start_ms(info) for name, info in running.items()}, running)
