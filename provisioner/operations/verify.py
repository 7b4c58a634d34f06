"""Prove one environment's DLZ reachability: the host-side check and the on-cluster probes.

Used by `provision verify`, `status --probe`, and at the end of `apply` / `rotate`. The exit
code follows `status`: 4 when the token does not open the container from here or a running
cluster cannot list it, 1 when a probe could not run, 3 when all is well but the token
expires within `sas.warn_days`, else 0.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.config.model import Environment
from provisioner.console import Console
from provisioner.errors import ExitCode
from provisioner.reach.host_check import HostCheck, check_until_settled
from provisioner.reach.probe import (
    DEFAULT_PARALLEL,
    DEFAULT_TIMEOUT_SECONDS,
    ERROR,
    FAILED,
    REACHED,
    ClusterProbe,
    probe_clusters,
)
from provisioner.run.context import RunContext, fetch_credentials, read_env_state

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials

SCHEMA_VERSION = 1
EXPIRING, DRIFT = int(ExitCode.EXPIRING), int(ExitCode.DRIFT)


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # per cluster, all calls included
    parallel: int = DEFAULT_PARALLEL

    @classmethod
    def of(cls, timeout: float | None, parallel: int | None) -> ProbeOptions:
        """From command-line values, None meaning the default."""
        return cls(
            DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout,
            DEFAULT_PARALLEL if parallel is None else max(1, parallel),
        )


@dataclass(frozen=True)
class Verification:
    environment: str
    backend: str
    host: HostCheck | None
    clusters: tuple[ClusterProbe, ...]

    @property
    def running(self) -> list[ClusterProbe]:
        return [c for c in self.clusters if c.state == "RUNNING"]

    @property
    def reaching(self) -> list[ClusterProbe]:
        return [c for c in self.running if c.outcome == REACHED]

    def summary(self) -> str:
        return f"{len(self.reaching)}/{len(self.running)} running clusters reach the DLZ"

    def exit_code(self, creds: DlzCredentials, warn_days: int) -> int:
        if (self.host is not None and not self.host.ok) or any(c.outcome == FAILED for c in self.clusters):
            return DRIFT
        if any(c.outcome == ERROR for c in self.clusters):
            return int(ExitCode.ERROR)
        return EXPIRING if creds.days_left() <= warn_days else 0

    def as_json(self, creds: DlzCredentials, warn_days: int) -> dict[str, Any]:
        code = self.exit_code(creds, warn_days)
        return {
            "schemaVersion": SCHEMA_VERSION,
            "environment": self.environment,
            "exitCode": code,
            "status": {0: "reachable", EXPIRING: "expiring", DRIFT: "unreachable"}.get(code, "error"),
            "dlz": {
                "backend": self.backend,
                "containerName": creds.container_name,
                "storageAccountName": creds.storage_account_name,
                "expiryDate": creds.expiry_date.isoformat(),
                "daysLeft": creds.days_left(),
            },
            "host": None if self.host is None else self.host.as_json(),
            "clusters": [c.as_json() for c in self.clusters],
            "runningClusters": len(self.running),
            "reachingClusters": len(self.reaching),
        }


def probe_env(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    options: ProbeOptions | None = None,
    clusters: Mapping[str, str] | None = None,
) -> list[ClusterProbe]:
    """The on-cluster probe for every cluster provision.yaml names, in its order. `clusters`: the
    managed clusters' ids as the command already read them (each fact once, issue 24); None:
    read the state here."""
    options = options or ProbeOptions()
    ids = read_env_state(ctx, env).clusters() if clusters is None else clusters
    return probe_clusters(
        ctx.workspace_client(env).sdk,
        [(c.name, ids.get(c.name)) for c in env.clusters],
        creds.storage_account_name,
        creds.container_name,
        timeout=options.timeout,
        max_parallel=options.parallel,
        identity=ctx.identity(env),
    )


def verify_env(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    options: ProbeOptions | None = None,
    clusters: Mapping[str, str] | None = None,
) -> Verification:
    """Both checks, side by side: the host check's storage round trip overlaps the probes
    (`clusters` as probe_env takes them)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlz-host") as pool:
        host = pool.submit(check_until_settled, creds, routing=ctx.target.blob_routing(), clock=ctx.clock)
        probed = probe_env(ctx, env, creds, options, clusters)
        return Verification(env.name, ctx.dlz_backend(), host.result(), tuple(probed))


def prove_reach(
    ctx: RunContext,
    env: Environment,
    creds: DlzCredentials,
    console: Console,
    clusters: Mapping[str, str] | None = None,
) -> int:
    """After apply/rotate converged: probe every running cluster, print 'N/N running clusters reach the DLZ'.

    Returns DRIFT (4) when a running cluster cannot reach it, 1 when a probe could not run, else 0.
    `clusters`: the ids the command converged (as probe_env takes them).
    """
    probes = probe_env(ctx, env, creds, clusters=clusters)
    result = Verification(env.name, ctx.dlz_backend(), None, tuple(probes))
    for probe in probes:
        if probe.outcome in (FAILED, ERROR):
            console.warn(f"{env.name}: {probe.name}: {probe.detail}")
    failed = any(p.outcome == FAILED for p in probes)
    line = f"{env.name}: {result.summary()}"
    if failed:
        console.warn(line)
        return DRIFT
    console.ok(line)
    return int(ExitCode.ERROR) if any(p.outcome == ERROR for p in probes) else 0


def prove_after(
    ctx: RunContext,
    env: Environment,
    console: Console,
    code: int,
    *,
    skip: bool,
    clusters: Mapping[str, str] | None = None,
) -> int:
    """The last step of `apply` and `rotate`: unless --no-verify, or the command already failed,
    prove reach — on `clusters`, the ids the command left (None: read the state)."""
    if skip or code != 0:
        return code
    return prove_reach(ctx, env, fetch_credentials(ctx, env), console, clusters)
