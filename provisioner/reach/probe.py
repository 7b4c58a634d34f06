"""On each running cluster: list the DLZ container with the cluster's own Spark config.

Through the Command Execution API 1.2 with `databricks-sdk` (`w.command_execution`,
databricks-sdk-py `databricks/sdk/service/compute.py`): `create` a Python context, `execute`
the probe, wait for `Finished`/`Error`, and `destroy` the context — always, also after a
timeout or an error (the context id is taken from `create`'s answer before waiting, which
`create_and_wait` would not give back on a timeout). Each cluster gets `timeout` seconds in
all; clusters are probed in parallel, at most `max_parallel` at once. A cluster that is not
RUNNING is never started for a probe: it will pick the current token up at its next start.
Before any command, the live cluster's access mode is judged for the run's identity
(provisioner.databricks.access_mode): a cluster dedicated to someone else is not probed (the
probe cannot run there: an error, saying why), nor is a standard-access one (its Spark-config
SAS is not used: it does not reach the DLZ, saying why).

The probe lists `wasbs://<container>@<account>.blob.core.windows.net/` with `dbutils.fs.ls`,
so the WASB driver reads `fs.azure.sas.<container>.<account>.blob.core.windows.net` from the
cluster's configuration exactly as ingestion does, and prints one line: `DLZ_PROBE {"ok": …}`
with the Java exception's first line on failure, `sig=` masked on the cluster already.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.databricks.access_mode import NOT_FOR_RUN, judge
from provisioner.secret import mask, mask_sas

if TYPE_CHECKING:
    from provisioner.databricks.identity import Identity
    from provisioner.databricks.sdk import Workspace as SdkClient

PROBE_MARKER = "DLZ_PROBE"
DEFAULT_TIMEOUT_SECONDS = 180.0  # a context on a busy real cluster can take a minute to come up
DEFAULT_PARALLEL = 8
NOT_RUNNING = "not running: will use the current token at its next start"

REACHED, FAILED, SKIPPED, ERROR = "reached", "failed", "not_running", "error"

_PROBE = """\
import json as _dlz_json, re as _dlz_re
def _dlz_probe():
    try:
        dbutils.fs.ls("wasbs://{container}@{account}.blob.core.windows.net/")
        return {{"ok": True}}
    except Exception as e:
        j = getattr(e, "java_exception", None)
        text = j.toString() if j is not None else "%s: %s" % (type(e).__name__, e)
        first = (text.strip().splitlines() or [""])[0]
        return {{"ok": False, "error": _dlz_re.sub(r"(sig=)[^&\\s\\"']+", r"\\1***", first)[:500]}}
print("{marker} " + _dlz_json.dumps(_dlz_probe()))
"""


def probe_program(account: str, container: str) -> str:
    return _PROBE.format(account=account, container=container, marker=PROBE_MARKER)


@dataclass(frozen=True)
class ClusterProbe:
    name: str
    cluster_id: str | None
    state: str
    outcome: str  # reached | failed | not_running | error
    detail: str  # one masked line
    seconds: float

    @property
    def reached(self) -> bool | None:
        """True/False when the probe ran; None when it did not (not running, or it could not run)."""
        return {REACHED: True, FAILED: False}.get(self.outcome)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clusterId": self.cluster_id,
            "state": self.state,
            "outcome": self.outcome,
            "reached": self.reached,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def probe_clusters(
    sdk: SdkClient,
    clusters: Sequence[tuple[str, str | None]],
    account: str,
    container: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_parallel: int = DEFAULT_PARALLEL,
    identity: Identity | None = None,
) -> list[ClusterProbe]:
    """Probe `(name, cluster_id)` pairs (None = not created), in the order given, as `identity`
    (whose access to each cluster is judged first; None: not judged)."""
    if not clusters:
        return []
    workers = max(1, min(max_parallel, len(clusters)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dlz-probe") as pool:
        futures = [
            pool.submit(_probe_one, sdk, name, cid, account, container, timeout, identity) for name, cid in clusters
        ]
        return [f.result() for f in futures]


def _probe_one(
    sdk: SdkClient,
    name: str,
    cluster_id: str | None,
    account: str,
    container: str,
    timeout: float,
    identity: Identity | None,
) -> ClusterProbe:
    started = time.monotonic()
    if cluster_id is None:
        return ClusterProbe(name, None, "NOT_CREATED", SKIPPED, "not created yet", 0.0)
    try:
        info = sdk.clusters.get(cluster_id)
        state = info.state.value if info.state is not None else "UNKNOWN"
        mode = info.data_security_mode.value if info.data_security_mode is not None else None
        found = None if identity is None else judge(mode, info.single_user_name, identity)
        if found is not None and found.blocks_probe:
            outcome = ERROR if found.kind == NOT_FOR_RUN else FAILED
            return ClusterProbe(
                name, cluster_id, state, outcome, f"not probed: {found.reason}", time.monotonic() - started
            )
        if state != "RUNNING":
            return ClusterProbe(name, cluster_id, state, SKIPPED, NOT_RUNNING, time.monotonic() - started)
        outcome, detail = _run_probe(sdk, cluster_id, account, container, started + timeout)
        if found is not None and outcome != REACHED:
            detail = _clean(f"{detail} ({found.reason})")
    except Exception as exc:  # the SDK's errors, timeouts, connection failures: one line, masked
        state = locals().get("state", "UNKNOWN")
        return ClusterProbe(name, cluster_id, state, ERROR, _one_line(exc), time.monotonic() - started)
    return ClusterProbe(name, cluster_id, "RUNNING", outcome, detail, time.monotonic() - started)


def _run_probe(sdk: SdkClient, cluster_id: str, account: str, container: str, deadline: float) -> tuple[str, str]:
    from databricks.sdk.service.compute import CommandStatus, Language, ResultType

    api = sdk.command_execution
    creating = api.create(cluster_id=cluster_id, language=Language.PYTHON)
    created: Any = creating.response  # the SDK types `Wait.response` loosely
    context_id = str(created.id)
    try:
        creating.result(timeout=_left(deadline))
        running = api.execute(
            cluster_id=cluster_id,
            context_id=context_id,
            language=Language.PYTHON,
            command=probe_program(account, container),
        )
        queued: Any = running.response
        command_id = str(queued.id)
        try:
            done = running.result(timeout=_left(deadline))
        except TimeoutError:
            with contextlib.suppress(Exception):
                api.cancel(cluster_id=cluster_id, context_id=context_id, command_id=command_id)
            raise
    finally:
        with contextlib.suppress(Exception):
            api.destroy(cluster_id=cluster_id, context_id=context_id)
    results = done.results
    if done.status == CommandStatus.FINISHED and results is not None and results.result_type == ResultType.TEXT:
        for line in str(results.data or "").splitlines():
            if line.startswith(PROBE_MARKER + " "):
                doc = json.loads(line[len(PROBE_MARKER) + 1 :])
                if doc.get("ok") is True:
                    return REACHED, f"listed wasbs://{container}@{account}.blob.core.windows.net/"
                return FAILED, _clean(str(doc.get("error") or "the listing failed"))
    summary = (results.summary or results.cause or "") if results is not None else ""
    return ERROR, _clean(f"the probe did not run ({done.status.value if done.status else '?'}): {summary}")


def _left(deadline: float) -> dt.timedelta:
    return dt.timedelta(seconds=max(1.0, deadline - time.monotonic()))


def _clean(text: str) -> str:
    return mask_sas(mask((text.strip().splitlines() or [""])[0]))[:500]


def _one_line(exc: BaseException) -> str:
    return _clean(f"{type(exc).__name__}: {exc}")
