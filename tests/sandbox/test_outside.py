"""The sandbox from outside (issue 23): `serve --port` honoured, each workspace at a URL with no
path prefix, and `provision sandbox env` exports that let raw terraform and databricks-sdk use a
running `serve`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.helpers.config import WORKSPACE_HOST
from tests.helpers.project import Project, applied


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(project: Project, *args: str, env: dict[str, str] | None = None) -> Iterator[dict[str, object]]:
    """`provision sandbox serve` in the background until its serve.json exists (the barrier)."""
    served = project.sandbox_dir / "serve" / "serve.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.main", "sandbox", "serve", *args, "--config", str(project.config_path)],
        cwd=project.dir,
        env=env or project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not served.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield json.loads(served.read_text())
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert not served.exists()  # withdrawn when serve stops


def test_serve_listens_on_the_port_asked_for_and_each_workspace_on_its_own(project: Project) -> None:
    port = free_port()
    env = project.env()
    del env["DATABRICKS_TOKEN"]  # serve makes a PAT and leaves it in a 0600 file for `env`
    with serving(project, "--port", str(port), env=env) as served:
        assert served["platformUrl"] == f"http://127.0.0.1:{port}"
        # AEP's gateway answers on that port (no credentials: 403 403010).
        assert requests.get(f"http://127.0.0.1:{port}/data/foundation/flowservice/connections", timeout=5).status_code
        token_file = Path(str(served["tokenFile"]))
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        workspace = dict(served["workspaces"])[WORKSPACE_HOST]  # type: ignore[call-overload]
        assert workspace.count("/") == 2  # scheme and host only
        me = requests.get(
            f"{workspace}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert me.status_code == 200 and me.json()["userName"]
        printed = project.run("sandbox", "env", sandbox=False)
        assert printed.returncode == 0, printed.stderr
        assert token not in printed.stdout  # read from the file at eval time
        assert f"export DATABRICKS_HOST={workspace}" in printed.stdout


def test_env_without_a_running_serve_is_one_line(project: Project) -> None:
    done = project.run("sandbox", "env", sandbox=False)
    assert done.returncode == 1
    assert "no sandbox is serving this project" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_raw_terraform_and_the_sdk_use_a_running_serve(project: Project) -> None:
    applied(project)
    env = project.env()
    del env["DATABRICKS_TOKEN"]
    root = project.root()
    with serving(project, env=env):
        script = (
            'eval "$(provision sandbox env --env default)" && '
            'echo "provider server: ${PROVISION_PROVIDER_SERVER-not exported}" && '
            f"terraform -chdir={root} plan -input=false -no-color -detailed-exitcode && "
            f'{sys.executable} -c "from databricks.sdk import WorkspaceClient; '
            'print(sorted(c.cluster_name for c in WorkspaceClient().clusters.list()))"'
        )
        shell_env = {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", script], cwd=project.dir, env=shell_env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes." in done.stdout
    assert "['aep-explore', 'aep-ingest']" in done.stdout
    # Only the keeper under `provision` reads it; `provision` would warn about it in a shell that had it.
    assert "provider server: not exported" in done.stdout


def test_serve_on_a_port_in_use_is_one_line(project: Project) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = project.run("sandbox", "serve", "--port", str(port), sandbox=False, timeout=60)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"error: --port {port}: cannot listen there (Address already in use) — choose another port"
    )
    assert not (project.sandbox_dir / "serve" / "serve.json").exists()
