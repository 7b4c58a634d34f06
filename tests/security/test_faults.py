"""Guarantee: every fault ends clean — bounded retries, one clear line, exit 1, nothing half-done.

AEP/IMS faults come from the sandbox's fault knobs (counters in its store, so the number of
requests that hit a knob is exact) or, for answers the knobs cannot produce, from a tiny
scripted HTTP server on 127.0.0.1 with the CLI in real (non-sandbox) mode pointed at it.
Each failing run is an `apply --auto-approve` on a project whose terraform/default/ was
rendered before and whose config has since changed: afterwards that root must be byte-for-byte
unchanged (same mtimes) and the workspace must hold no cluster.

Terraform faults run the real binary on the sandbox: missing and too-old binaries, a provider
init failure, a workspace failure mid-apply, SIGINT/SIGTERM during apply, and two concurrent
applies. After each: state consistent with the workspace, lock released, next run converges.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox import Sandbox
from tests.helpers.config import DATABRICKS_PAT, WORKSPACE_KEY
from tests.helpers.output import error_lines
from tests.helpers.processes import descendants
from tests.helpers.project import Project, new_project, state_cluster_ids, tree_fingerprint, workspace_cluster_ids
from tests.helpers.zygote import STARTED_PROVIDERS

# Tens of seconds on one worker: scheduled before the short files, not as the run's tail
# (tests/conftest.py).
pytestmark = pytest.mark.long

FAST_RETRIES = {"retries": 2, "max_retry_seconds": 10, "timeout_seconds": 5}


# ---- shared setup ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A sandbox project whose terraform/default/ has been rendered once (copied per test)."""
    project = new_project(tmp_path_factory.mktemp("faults-template"))
    done = project.run("render")
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def prepared(rendered_template: Project, tmp_path: Path) -> Project:
    """A copy of the rendered project whose config now differs (a render would rewrite clusters.tf)."""
    target = tmp_path / "p"
    shutil.copytree(rendered_template.dir, target, symlinks=True)
    project = new_project(target, rendered_template.config)
    project.config["clusters"][0]["custom_tags"]["added"] = "after-render"
    project.write_config()
    return project


def set_aep(project: Project, **settings: Any) -> None:
    project.config["aep"].update(settings)
    project.write_config()


def assert_clean_failure(
    project: Project, before: dict[str, Any], done: subprocess.CompletedProcess[str], *expected: str
) -> str:
    """exit 1, exactly one `error:` line naming the cause, no traceback, nothing rendered or applied."""
    assert done.returncode == 1, done.stdout[-1500:] + done.stderr[-1500:]
    errors = error_lines(done)
    assert len(errors) == 1, done.stderr
    line = errors[0]
    for phrase in expected:
        assert phrase in line, line
    assert "Traceback" not in done.stdout + done.stderr
    assert tree_fingerprint(project.root()) == before, "terraform/default/ changed after a failed run"
    assert not (project.root() / "terraform.tfstate").exists()
    return line


def timed_apply(project: Project, *, sandbox: bool = True) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = project.run("apply", "--auto-approve", sandbox=sandbox, timeout=120)
    return done, time.monotonic() - started


def knob_left(project: Project, knob: str) -> int:
    return int(project.store().faults()[knob])


# ---- AEP faults through the sandbox's knobs -----------------------------------------------

KNOB_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "429 with Retry-After": ({"aep.status_429": 99, "aep.retry_after": 1}, "aep.status_429", "429"),
    "429 without Retry-After": ({"aep.status_429": 99, "aep.retry_after": None}, "aep.status_429", "429"),
    "500 burst": ({"aep.status_5xx": 99, "aep.status_5xx_code": 500}, "aep.status_5xx", "500"),
    "502 burst": ({"aep.status_5xx": 99, "aep.status_5xx_code": 502}, "aep.status_5xx", "502"),
    "503 burst": ({"aep.status_5xx": 99, "aep.status_5xx_code": 503}, "aep.status_5xx", "503"),
    "HTML proxy page": ({"aep.html": 99}, "aep.html", "502"),
}


@pytest.mark.parametrize("case", sorted(KNOB_CASES))
def test_aep_persistent_fault_is_retried_a_bounded_number_of_times(prepared: Project, case: str) -> None:
    knobs, counter, phrase = KNOB_CASES[case]
    set_aep(prepared, **FAST_RETRIES)
    prepared.store().set_faults(**knobs)
    before = tree_fingerprint(prepared.root())
    done, elapsed = timed_apply(prepared)
    assert_clean_failure(prepared, before, done, "AEP DLZ credentials", phrase, "after retries")
    # retries=2: exactly three requests reached AEP — no more, no fewer.
    assert knobs[counter] - knob_left(prepared, counter) == 3
    assert prepared.store().list_clusters(WORKSPACE_KEY) == []
    if knobs.get("aep.retry_after"):
        assert elapsed >= 2 * knobs["aep.retry_after"], "Retry-After was not honoured"


def test_total_retry_time_is_capped_even_with_retry_after_3600(prepared: Project) -> None:
    set_aep(prepared, retries=5, max_retry_seconds=1, timeout_seconds=5)
    prepared.store().set_faults(**{"aep.status_429": 99, "aep.retry_after": 3600})
    before = tree_fingerprint(prepared.root())
    done, elapsed = timed_apply(prepared)
    assert_clean_failure(prepared, before, done, "429", "after retries", "aep.max_retry_seconds")
    assert elapsed < 15, f"took {elapsed:.1f}s although aep.max_retry_seconds is 1"


def test_retries_zero_means_a_single_request(prepared: Project) -> None:
    set_aep(prepared, retries=0)
    prepared.store().set_faults(**{"aep.status_5xx": 99})
    before = tree_fingerprint(prepared.root())
    done, _ = timed_apply(prepared)
    assert_clean_failure(prepared, before, done, "AEP DLZ credentials")
    assert 99 - knob_left(prepared, "aep.status_5xx") == 1


def test_aep_timeout_is_bounded_by_timeout_seconds(prepared: Project) -> None:
    set_aep(prepared, retries=1, timeout_seconds=0.3, max_retry_seconds=2)
    prepared.store().set_faults(**{"aep.latency_ms": 2500})
    before = tree_fingerprint(prepared.root())
    done, elapsed = timed_apply(prepared)
    assert_clean_failure(prepared, before, done, "did not answer in time", "aep.timeout_seconds")
    assert elapsed < 15


def test_expired_token_from_aep_is_refused(prepared: Project) -> None:
    prepared.store().set_faults(**{"aep.expired": 1})
    before = tree_fingerprint(prepared.root())
    done, _ = timed_apply(prepared)
    assert_clean_failure(prepared, before, done, "expired", "provision rotate")


def test_transient_faults_are_retried_to_success(prepared: Project) -> None:
    set_aep(prepared, **FAST_RETRIES)
    prepared.store().set_faults(**{"aep.status_429": 1, "aep.retry_after": 0, "aep.status_5xx": 1, "aep.html": 0})
    done = prepared.run("render")
    assert done.returncode == 0, done.stderr
    assert "after-render" in (prepared.root() / "clusters.tf").read_text()
    assert knob_left(prepared, "aep.status_429") == 0 and knob_left(prepared, "aep.status_5xx") == 0


# ---- AEP/IMS answers the knobs cannot produce: a scripted local server ----------------------


class Script:
    """Scripted answers per path prefix; the last answer repeats. Counts requests per prefix."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def on(self, prefix: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ctype = "text/html" if isinstance(body, bytes) else "application/json"
        self.routes.setdefault(prefix, []).append((status, {"Content-Type": ctype, **(headers or {})}, raw))

    def reply(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            for prefix, answers in self.routes.items():
                if path.startswith(prefix):
                    self.hits[prefix] = self.hits.get(prefix, 0) + 1
                    return answers.pop(0) if len(answers) > 1 else answers[0]
        return 404, {"Content-Type": "application/json"}, b'{"error":"not scripted"}'


IMS = "/ims/token/v3"
DLZ = "/data/foundation/connectors/landingzone/credentials"


@pytest.fixture
def aep_server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, body = script.reply(self.path)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.on(IMS, 200, {"access_token": "ims-token-value-0123456789", "token_type": "bearer", "expires_in": 86399})
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def dlz_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "containerName": "dlz-databricks-container",
        "storageAccountName": "sndbxdtln0123456789abcde",
        "SASToken": "sv=2020-10-02&si=dlz-x&sr=c&sp=racwdlm&sig=ab%2Fcd%2Bef0123456789%3D",
        "storageAccountKey": None,
        "SASUri": "https://sndbxdtln0123456789abcde.blob.core.windows.net/dlz-databricks-container?sv=...",
        "expiryDate": (date.today() + timedelta(days=90)).isoformat(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def workspace(prepared: Project) -> Iterator[Project]:
    """Real mode still starts with the Databricks identity (before any AEP call): give it a
    workspace to find, the sandbox's, through DATABRICKS_HOST as a user would name one."""
    from provisioner.sandbox import Sandbox

    host = prepared.config["databricks"]["host"]
    with Sandbox(prepared.dir / "ws-only", workspace_hosts=[host], databricks_token=DATABRICKS_PAT) as sandbox:
        prepared.extra_env["DATABRICKS_HOST"] = sandbox.workspace_url(host)
        yield prepared


@pytest.fixture
def real_mode(workspace: Project, aep_server: tuple[str, Script]) -> tuple[Project, Script]:
    url, script = aep_server
    set_aep(workspace, platform_url=url, ims_url=url, **FAST_RETRIES)
    return workspace, script


SERVER_CASES: dict[str, tuple[str, int, Any, tuple[str, ...]]] = {
    "AEP 401": (
        DLZ,
        401,
        {"error_code": "401013", "message": "Oauth token is not valid"},
        ("401", "AEP_CLIENT_SECRET"),
    ),
    "AEP 403": (DLZ, 403, {"error_code": "403003", "message": "Api Key is invalid"}, ("403", "aep.client_id")),
    "AEP 404": (DLZ, 404, {"title": "NotFound", "detail": "no such sandbox"}, ("404", "aep.sandbox")),
    "IMS 401": (
        IMS,
        401,
        {"error": "invalid_client", "error_description": "invalid client_id or client_secret"},
        ("IMS", "AEP_CLIENT_SECRET"),
    ),
    "HTML 200": (DLZ, 200, b"<html><body>Sign in</body></html>", ("text/html", "instead of JSON")),
    "JSON missing fields": (DLZ, 200, dlz_body(SASToken=None, expiryDate=None), ("lacks SASToken, expiryDate",)),
    "expiryDate past": (
        DLZ,
        200,
        dlz_body(expiryDate=(date.today() - timedelta(days=2)).isoformat()),
        ("expired", "provision rotate"),
    ),
    "expiryDate malformed": (DLZ, 200, dlz_body(expiryDate="31/12/2099"), ("31/12/2099", "YYYY-MM-DD")),
}


@pytest.mark.parametrize("case", sorted(SERVER_CASES))
def test_aep_error_answer_is_one_clear_line_without_retry(real_mode: tuple[Project, Script], case: str) -> None:
    project, script = real_mode
    path, status, body, phrases = SERVER_CASES[case]
    if path == IMS:
        script.routes[IMS] = []  # replace the fixture's good IMS answer
    script.on(path, status, body)
    before = tree_fingerprint(project.root())
    done, _ = timed_apply(project, sandbox=False)
    assert_clean_failure(project, before, done, *phrases)
    assert script.hits.get(path) == 1, f"a {status} answer must not be retried: {script.hits}"


def test_connection_refused_is_retried_then_one_line(workspace: Project) -> None:
    import socket

    prepared = workspace

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    set_aep(prepared, platform_url=url, ims_url=url, **FAST_RETRIES)
    before = tree_fingerprint(prepared.root())
    done, elapsed = timed_apply(prepared, sandbox=False)
    assert_clean_failure(prepared, before, done, "cannot connect", url)
    assert elapsed < 15


# ---- Terraform faults -----------------------------------------------------------------------


def assert_consistent_and_unlocked(project: Project) -> None:
    assert state_cluster_ids(project) == workspace_cluster_ids(project), "state and workspace disagree"
    assert not (project.root() / ".terraform.tfstate.lock.info").exists(), "state lock left behind"


def assert_converges(project: Project) -> None:
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    again = project.run("plan")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert_consistent_and_unlocked(project)
    assert len(workspace_cluster_ids(project)) == len(project.config["clusters"])


def test_terraform_binary_missing(project: Project) -> None:
    done = project.run("plan", env=project.env(TERRAFORM_BINARY="/nonexistent/terraform"))
    assert done.returncode == 1
    (line,) = error_lines(done)
    assert "TERRAFORM_BINARY=/nonexistent/terraform" in line and "not found" in line


def test_terraform_too_old(project: Project, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "terraform"
    fake.write_text('#!/bin/sh\necho "Terraform v1.4.0"\necho "on linux_amd64"\n')
    fake.chmod(0o755)
    done = project.run("plan", env=project.env(TERRAFORM_BINARY=str(fake)))
    assert done.returncode == 1
    (line,) = error_lines(done)
    assert "1.4.0" in line and "too old" in line and ">= 1.5" in line


def test_provider_init_failure(project: Project) -> None:
    root = project.root()
    root.mkdir(parents=True)
    # A lock file pinning a checksum no package has: init must refuse the provider. The
    # sandbox's init keeps its lock file in its own directory (terraform/init.py).
    lock = Sandbox(project.sandbox_dir).init_dir(root) / ".terraform.lock.hcl"
    lock.parent.mkdir(parents=True)
    lock.write_text(
        'provider "registry.terraform.io/databricks/databricks" {\n'
        '  version     = "1.99.0"\n'
        '  constraints = "~> 1.99"\n'
        "  hashes = [\n"
        '    "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",\n'
        "  ]\n"
        "}\n"
    )
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done)
    assert "terraform init failed" in line, line
    assert "Traceback" not in done.stderr
    assert workspace_cluster_ids(project) == set()
    assert not (root / "terraform.tfstate").exists()


def test_apply_failure_midway_keeps_state_consistent_and_converges(project: Project) -> None:
    # The second cluster create fails; the scope, the secret and the first cluster succeed.
    done = project.run("render")
    assert done.returncode == 0, done.stderr
    project.store().set_faults(**{"workspace.fail": {"clusters/create": 1}})
    done = project.run("apply", "--auto-approve")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    (line,) = error_lines(done)
    assert "terraform apply failed" in line, line
    assert len(workspace_cluster_ids(project)) == 1
    assert_consistent_and_unlocked(project)
    assert_converges(project)
    # The SAS token reached the workspace verbatim: still URL-encoded, never decoded or re-encoded.
    (token,) = [t["SASToken"] for t in project.store().valid_tokens()]
    assert "%2F" in token and "%2B" in token and token.endswith("%3D")
    assert project.store().secret_value(WORKSPACE_KEY, "aep-dlz", "dlz-sas-token") == token
    for cluster_id in workspace_cluster_ids(project):
        assert project.store().dlz_access(WORKSPACE_KEY, cluster_id)


def _start_slow_apply(project: Project) -> tuple[subprocess.Popen[str], list[str]]:
    argv = [
        sys.executable,
        "-m",
        "provisioner.main",
        "apply",
        "--auto-approve",
        "--config",
        str(project.config_path),
        "--sandbox",
    ]
    proc = subprocess.Popen(
        argv,
        cwd=project.dir,
        env=project.env(**STARTED_PROVIDERS, PROVISION_SANDBOX_CLUSTER_START_SECONDS="4"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        lines.append(line)
        if "databricks_cluster." in line and "Creating..." in line:
            return proc, lines
        assert time.monotonic() < deadline
    pytest.fail("apply never started creating clusters:\n" + "".join(lines) + proc.stderr.read())  # type: ignore[union-attr]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_apply_stops_terraform_cleanly(project: Project, sig: signal.Signals) -> None:
    proc, lines = _start_slow_apply(project)
    tree = descendants(proc.pid)
    assert tree, "terraform should be running"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, "".join(lines) + out + err
    assert "interrupted" in err and "rerun the command" in err
    assert "Traceback" not in out + err
    # Terraform (and its provider) stopped: none of the processes we saw is still alive.
    alive = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
    assert not alive, f"left running: {alive}"
    # Terraform finished the in-flight creates and recorded them: nothing untracked exists.
    assert_consistent_and_unlocked(project)
    assert_converges(project)


def test_concurrent_apply_is_refused_by_the_state_lock(project: Project) -> None:
    first, _ = _start_slow_apply(project)
    try:
        second = project.run("apply", "--auto-approve")
    finally:
        out, err = first.communicate(timeout=90)
    assert first.returncode == 0, out[-2000:] + err[-2000:]
    assert second.returncode == 1, second.stderr
    (line,) = error_lines(second)
    assert "lock" in line.lower(), line
    assert_consistent_and_unlocked(project)
    assert len(workspace_cluster_ids(project)) == len(project.config["clusters"])
