"""The sandbox from outside (issue 23): `serve --port` honoured, each workspace at a URL with no
path prefix, and `provision sandbox env` exports that let raw terraform and databricks-sdk use a
running `serve`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import requests

from provisioner.sandbox import SERVER_ENV
from tests.helpers.config import WORKSPACE_HOST
from tests.helpers.processes import run_sampled
from tests.helpers.project import Project, applied
from tests.helpers.sandbox import serving, use_azurite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_listens_on_the_port_asked_for_and_each_workspace_on_its_own(project: Project) -> None:
    port = free_port()
    env = project.env()
    del env["DATABRICKS_TOKEN"]  # serve makes a PAT and leaves it in a 0600 file for `env`
    with serving(project, "--port", str(port), env=env) as serve:
        served = serve.served
        assert served["platformUrl"] == f"http://127.0.0.1:{port}"
        # AEP's gateway answers on that port (no credentials: 403 403010).
        assert requests.get(f"http://127.0.0.1:{port}/data/foundation/flowservice/connections", timeout=5).status_code
        token_file = Path(str(served["tokenFile"]))
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        workspace = dict(served["workspaces"])[WORKSPACE_HOST]
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


def test_a_command_on_a_served_sandbox_starts_no_storage_of_its_own(project: Project) -> None:
    """The server's DLZ answers the command's probe: an Azurite the command warmed for it (~1
    CPU-s of node) would serve nothing."""
    use_azurite(project)
    applied(project)  # AEP has issued the landing zone: the next apply warms its storage at once
    with serving(project) as serve:
        project.extra_env[SERVER_ENV] = serve.url
        apply = run_sampled(project, "apply", "--auto-approve")
    assert apply.result.returncode == 0, apply.output[-2000:]
    assert "2/2 running clusters reach the DLZ" in apply.output
    assert any("terraform" in argv[0] for argv in apply.cmdlines), "the sampler saw the run's processes"
    assert not [argv for argv in apply.cmdlines if "azurite" in " ".join(argv)]
    assert "(Azurite (" in (project.dir / "serve.log").read_text()  # the server's storage served the probe
