"""After an apply, make every running managed cluster actually use the current SAS token.

Terraform's view ends too early for AEP's refresh-revokes-at-once semantics:
- inline mode: the provider `edit`s a running cluster, which restarts it, but returns before
  the restart finishes — the old process may still be serving with the revoked token;
- secret_scope mode: the secret is replaced and nothing restarts at all, because
  `{{secrets/…}}` references are resolved only when a cluster starts.
So: restart running clusters that started before the secret's last update, then wait until
every cluster that is (re)starting is RUNNING. Terminated clusters are left alone: they pick
the current configuration up at their next start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.console import Console
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.config import Environment
    from provisioner.databricks.workspace import WorkspaceClient
    from provisioner.workflow import RunContext

_TRANSITIONAL = frozenset({"PENDING", "RESTARTING", "RESIZING"})


@dataclass
class ConvergeReport:
    restarted: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    skipped_terminated: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # already RUNNING on the current config


def secret_updated_ms(client: WorkspaceClient, scope: str, key: str) -> int | None:
    """When the secret was last written (ms), or None if it (or its scope) does not exist.

    Any other failure is an error: guessing "no secret" would skip restarts and leave
    clusters on a revoked token.
    """
    from provisioner.databricks.workspace import WorkspaceError

    try:
        secrets = client.list_secrets(scope)
    except WorkspaceError as exc:
        if exc.not_found:
            return None
        raise ProvisionError(f"cannot list the secrets of scope {scope} ({exc.message})") from None
    for item in secrets:
        if item.get("key") == key:
            return int(item.get("last_updated_timestamp") or 0)
    return None


def last_start_ms(info: dict[str, Any]) -> int:
    return int(info.get("last_restarted_time") or info.get("start_time") or 0)


@dataclass(frozen=True)
class Freshness:
    """When is a RUNNING cluster still on the old configuration?

    - secret_scope: it (re)started before the secret's current value was written
      (`secret_ms`, the workspace's own clock, like the cluster times);
    - any mode, when the caller saw the clusters before changing them (`seen_starts`,
      e.g. rotate's pre-flight): it has not (re)started since — an edit's restart may not
      be visible yet right after `apply` returns, so RUNNING alone proves nothing.
    """

    secret_ms: int | None = None
    seen_starts: Mapping[str, int] = field(default_factory=dict)

    def stale(self, name: str, info: dict[str, Any]) -> bool:
        started = last_start_ms(info)
        if self.secret_ms is not None and started < self.secret_ms:
            return True
        return name in self.seen_starts and started <= self.seen_starts[name]


def converge_clusters(
    ctx: RunContext,
    env: Environment,
    console: Console,
    *,
    cluster_ids: dict[str, str] | None = None,
    timeout: float = 1800.0,
    retry_hint: str = "rerun `provision apply`",
    seen_starts: Mapping[str, int] | None = None,
) -> ConvergeReport:
    if cluster_ids is None:
        from provisioner.terraform import read_state

        cluster_ids = read_state(ctx.runner(env, sas=None, console=console), init=False).clusters()
    report = ConvergeReport()
    if not cluster_ids:
        return report
    client = ctx.workspace_client(env)
    secret_ms = None
    if env.sas.mode == "secret_scope":
        secret_ms = secret_updated_ms(client, env.sas.secret_scope, env.sas.secret_key)
    fresh = Freshness(secret_ms, dict(seen_starts or {}))
    pending: dict[str, str] = {}
    for name, cid in sorted(cluster_ids.items()):
        info = client.get_cluster(cid)
        state = info.get("state", "")
        if state == "RUNNING" and fresh.stale(name, info):
            restart(client, name, cid, console, report, "it started before the new SAS token was in place")
            pending[name] = cid
        elif state == "RUNNING":
            report.running.append(name)
        elif state in _TRANSITIONAL:
            pending[name] = cid
            report.waited.append(name)
        elif state in ("TERMINATED", "TERMINATING"):
            report.skipped_terminated.append(name)
    if pending:
        wait_running(client, pending, console, timeout, fresh=fresh, report=report, retry_hint=retry_hint)
    return report


def restart(
    client: WorkspaceClient, name: str, cid: str, console: Console, report: ConvergeReport | None, why: str
) -> None:
    from provisioner.databricks.workspace import WorkspaceError

    console.info(f"restarting {name} ({cid}): {why}")
    try:
        client.restart_cluster(cid)
    except WorkspaceError as exc:
        if exc.error_code != "INVALID_STATE":
            raise ProvisionError(f"cannot restart cluster {name} ({cid}): {exc.message}") from None
        # Already restarting (an edit's restart just became visible): waiting is enough.
    if report is not None and name not in report.restarted:
        report.restarted.append(name)


def wait_running(
    client: WorkspaceClient,
    clusters: dict[str, str],
    console: Console,
    timeout: float,
    *,
    fresh: Freshness | None = None,
    report: ConvergeReport | None = None,
    retry_hint: str = "rerun `provision apply`",
) -> None:
    """Poll until every cluster is RUNNING on the current config; fast at first, then every 10 s.

    A cluster that was already starting when the secret changed resolved the old value: once
    it is RUNNING it is restarted once more, so RUNNING here means current.
    """
    fresh = fresh or Freshness()
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    remaining = dict(clusters)
    # Dense polls first: the poll after a restart finishes is what closes the revocation
    # window, so it must come soon after; the delay then grows to at most 10 s.
    delay = 0.05
    last_report = started
    while remaining:
        for name, cid in list(remaining.items()):
            info = client.get_cluster(cid)
            state = info.get("state", "")
            if state == "RUNNING" and fresh.stale(name, info):
                restart(client, name, cid, console, report, "it was starting when the SAS secret was updated")
            elif state == "RUNNING":
                del remaining[name]
                elapsed = time.monotonic() - started
                console.ok(f"{name} is RUNNING on the current configuration ({elapsed:.1f}s)")
            elif state in ("TERMINATED", "ERROR"):
                reason = (info.get("termination_reason") or {}).get("code") or info.get("state_message") or ""
                why = f" ({reason})" if reason else ""
                raise ProvisionError(
                    f"cluster {name} ({cid}) went {state}{why} while restarting — "
                    f"check it in the workspace, then {retry_hint}"
                )
        if not remaining:
            break
        now = time.monotonic()
        if now >= deadline:
            names = ", ".join(sorted(remaining))
            raise ProvisionError(f"clusters {names} not RUNNING after {timeout:.0f}s — {retry_hint} to keep waiting")
        if now - last_report >= 15:
            console.info(f"waiting for {', '.join(sorted(remaining))} to be RUNNING ({now - started:.0f}s)")
            last_report = now
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.3, 10.0)
