"""The conformance suite: Databricks' own SDK tests' expectations of a workspace, held against
`provision sandbox serve` through databricks-sdk, at the workspace's own URL (no path prefix, as
a real workspace's), one served sandbox per test session. Each test names the upstream test it
follows: databricks-sdk-py `tests/integration/` (v0.133.0) or databricks-sdk-go `internal/`."""

from __future__ import annotations

import copy
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from tests.helpers.config import BASE_CONFIG, WORKSPACE_HOST
from tests.helpers.project import Project


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("conformance")
    (root / "home").mkdir()
    project = Project(root, copy.deepcopy(BASE_CONFIG))
    project.write_config()
    env = project.env()
    del env["DATABRICKS_TOKEN"]  # serve makes the PAT and leaves it in its 0600 file
    serve_file = project.sandbox_dir / "serve" / "serve.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.main", "sandbox", "serve", "--config", str(project.config_path)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not serve_file.exists():  # the barrier: serve writes it once it listens
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield json.loads(serve_file.read_text())
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


@pytest.fixture(scope="session")
def w(served: dict[str, object]) -> WorkspaceClient:
    """`w` of databricks-sdk-py's integration conftest: a workspace client from host and PAT."""
    workspaces = dict(served["workspaces"])  # type: ignore[call-overload]
    token = Path(str(served["tokenFile"])).read_text().strip()
    return WorkspaceClient(host=workspaces[WORKSPACE_HOST], token=token, auth_type="pat")


@pytest.fixture(scope="session")
def default_cluster(w: WorkspaceClient) -> str:
    """TEST_DEFAULT_CLUSTER_ID: a running cluster that has been started and terminated before."""
    info = w.clusters.create_and_wait(
        cluster_name=f"sdk-default-{secrets.token_hex(4)}",
        spark_version=w.clusters.select_spark_version(long_term_support=True),
        node_type_id=w.clusters.select_node_type(local_disk=True),
        num_workers=1,
        autotermination_minutes=10,
    )
    assert info.cluster_id is not None
    w.clusters.delete_and_wait(info.cluster_id)
    w.clusters.start_and_wait(info.cluster_id)
    return info.cluster_id


@pytest.fixture
def random() -> object:
    """`random` of databricks-sdk-py's integration conftest."""

    def inner(k: int = 16) -> str:
        return secrets.token_hex(k)[:k]

    return inner
