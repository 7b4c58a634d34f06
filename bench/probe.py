"""The DLZ probe's cost on the sandbox: seconds per cluster, Azurite and the oracle.

    python bench/probe.py [--clusters 1,4,16] [--repeat 3]

For each backend and cluster count it starts a `Sandbox` in-process, creates that many
RUNNING clusters whose Spark config holds AEP's current token, and times
`provisioner.reach.probe.probe_clusters` (the code `verify`, `status --probe`, `apply` and
`rotate` run) through the real databricks-sdk against the workspace emulator: clusters.get,
contexts/create, commands/execute, commands/status, contexts/destroy, and a real List Blobs on
Azurite. Also reported: Azurite's cold start (the first DLZ request of a command pays it) and
the host-side check. Prints a Markdown table; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.aep.landingzone import DlzCredentials
from provisioner.reach.host_check import check_from_host
from provisioner.reach.probe import REACHED, probe_clusters
from provisioner.sandbox import Sandbox
from provisioner.sandbox.azurite import find_azurite
from provisioner.secret import Secret

HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
WS = "adb-1234567890123456.7.azuredatabricks.net"
ORG = "1234567890ABCDEF12345678@AdobeOrg"


def measure(backend: str, count: int, repeat: int) -> dict[str, float]:
    import datetime as dt

    with tempfile.TemporaryDirectory() as tmp, Sandbox(Path(tmp), workspace_hosts=[HOST], dlz_backend=backend) as sb:
        body = sb.store.dlz_credentials(ORG, "prod")
        account, container = body["storageAccountName"], body["containerName"]
        key = f"fs.azure.sas.{container}.{account}.blob.core.windows.net"
        spec = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1}
        ids = [
            sb.store.create_cluster(WS, {**spec, "cluster_name": f"c{i}", "spark_conf": {key: body["SASToken"]}})
            for i in range(count)
        ]
        while any((sb.store.get_cluster(WS, c) or {}).get("state") != "RUNNING" for c in ids):
            time.sleep(0.05)
        creds = DlzCredentials(container, account, Secret(body["SASToken"]), dt.date.fromisoformat(body["expiryDate"]))
        started = time.perf_counter()
        assert check_from_host(creds, routing=sb.blob_hosts()).ok
        cold = time.perf_counter() - started  # Azurite's start, when it is the backend
        started = time.perf_counter()
        assert check_from_host(creds, routing=sb.blob_hosts()).ok
        host = time.perf_counter() - started
        from databricks.sdk import WorkspaceClient as SdkWorkspaceClient

        assert sb.databricks_token is not None
        sdk = SdkWorkspaceClient(host=sb.workspace_url(HOST), token=sb.databricks_token.reveal(), auth_type="pat")
        pairs: list[tuple[str, str | None]] = [(f"c{i}", c) for i, c in enumerate(ids)]
        probe_clusters(sdk, pairs[:1], account, container)  # warm-up: SDK config, imports
        walls: list[float] = []
        per: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            results = probe_clusters(sdk, pairs, account, container)
            walls.append(time.perf_counter() - started)
            assert all(r.outcome == REACHED for r in results), results
            per += [r.seconds for r in results]
        return {
            "cold": cold,
            "host": host,
            "wall": statistics.median(walls),
            "per_cluster": statistics.median(per),
            "per_cluster_max": max(per),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", default="1,4,16")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = ["oracle"] + (["azurite"] if find_azurite(os.environ) else [])
    print(f"load average at start: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        "| backend | clusters | wall (all, parallel 8) | per cluster (median, max) | host check | first DLZ request |"
    )
    print("|---|---|---|---|---|---|")
    for backend in backends:
        for count in (int(n) for n in args.clusters.split(",")):
            m = measure(backend, count, args.repeat)
            print(
                f"| {backend} | {count} | {m['wall']:.2f} s | {m['per_cluster']:.2f} s, {m['per_cluster_max']:.2f} s "
                f"| {m['host'] * 1000:.0f} ms | {m['cold']:.2f} s |"
            )
    print(f"load average at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
