"""Shared fixtures: a throwaway project (provision.yaml + terraform/ + sandbox state) in tmp_path,
driven through the real CLI in a subprocess, with the real terraform binary."""

from __future__ import annotations

import copy
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from provisioner.databricks.identity import Identity

if TYPE_CHECKING:
    from provisioner.run.context import RunContext

REPO = Path(__file__).resolve().parent.parent

# The workspace every test project names: its host, and its key in the sandbox's store.
WORKSPACE_KEY = "adb-1234567890123456.7.azuredatabricks.net"
WORKSPACE_HOST = f"https://{WORKSPACE_KEY}"

BASE_CONFIG: dict[str, Any] = {
    "aep": {
        "org_id": "1234ABCD5678EF90ABCD1234@AdobeOrg",
        "client_id": "0123456789abcdef0123456789abcdef",
        "sandbox": "prod",
    },
    "databricks": {"host": WORKSPACE_HOST},
    "sas": {"mode": "secret_scope", "secret_scope": "aep-dlz", "secret_key": "dlz-sas-token"},
    "clusters": [
        {
            "name": "aep-ingest",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "autoscale": {"min_workers": 1, "max_workers": 4},
            "autotermination_minutes": 60,
            "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
            "custom_tags": {"team": "data"},
        },
        {
            "name": "aep-explore",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "num_workers": 1,
        },
    ],
    "terraform": {"dir": "terraform", "backend": {"type": "local"}},
}

# For unit tests of Terraform's child environment: the identity a run would have resolved.
IDENTITY = Identity(
    host=BASE_CONFIG["databricks"]["host"], auth_type="pat", user_name="u@example.com", display_name="u"
)

# Distinctive throwaway secrets: leak scans grep for exactly these.
AEP_SECRET = "p8e-SECRETaep0client0secret0XYZ"
DATABRICKS_PAT = "dapi-PATsecret0token0value0QWERTY"


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# The stand-in provider (the `tf` framework) serves gRPC over TLS with a self-signed
# certificate it caches in ~/.cache/tf-python-provider/. Every project has a HOME of its
# own, so without this each one's first provider start would import `cryptography` and
# generate a key: one certificate per test session, copied into each project's HOME.
_CERT_CACHE = Path(".cache") / "tf-python-provider" / "ssl_cert.json"


@cache
def _session_certificate() -> Path:
    home = Path(tempfile.mkdtemp(prefix="provider-cert-"))
    code = "import tf.runner; tf.runner._self_signed_cert()"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(home)}, check=True)
    return home / _CERT_CACHE


def share_provider_certificate(home: Path) -> None:
    target = home / _CERT_CACHE
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_session_certificate(), target)  # a fresh mtime: the provider trusts it


@dataclass
class Project:
    dir: Path
    config: dict[str, Any]
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.dir / "provision.yaml"

    @property
    def sandbox_dir(self) -> Path:
        return self.dir / ".provision" / "sandbox"

    def write_config(self, config: dict[str, Any] | None = None) -> None:
        if config is not None:
            self.config = config
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")

    def root(self, env: str = "default") -> Path:
        return self.dir / "terraform" / env

    def env(self, **extra: str) -> dict[str, str]:
        share_provider_certificate(self.dir / "home")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AEP_", "DATABRICKS_", "PROVISION_"))}
        env.update(
            {
                "AEP_CLIENT_SECRET": AEP_SECRET,
                "DATABRICKS_TOKEN": DATABRICKS_PAT,
                "HOME": str(self.dir / "home"),
                "NO_COLOR": "1",
                "PROVISION_SANDBOX_CLUSTER_START_SECONDS": "0.3",
                # The DLZ on the built-in oracle unless a test asks for Azurite (`use_azurite`):
                # node's start costs seconds per command, which only the DLZ tests need to pay.
                "PROVISION_AZURITE": "off",
            }
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def run(
        self,
        *args: str,
        sandbox: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 180,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "provisioner.main", *args, "--config", str(self.config_path)]
        if sandbox:
            argv.append("--sandbox")
        return subprocess.run(
            argv,
            cwd=self.dir,
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def store(self) -> Any:
        from provisioner.sandbox.store import SandboxStore

        return SandboxStore(self.sandbox_dir)


def sandbox_pat(sandbox: Any) -> str:
    """The throwaway PAT a Sandbox made for its user (one made with an OAuth client has none)."""
    token = sandbox.databricks_token
    assert token is not None, "this sandbox authenticates with an OAuth client, not a PAT"
    return str(token.reveal())


def sandbox_workspace(sandbox: Any, host: str = BASE_CONFIG["databricks"]["host"]) -> Any:
    """A workspace client for a running Sandbox, with its own credentials, resolved as a run would."""
    from provisioner.config.model import AuthSettings
    from provisioner.databricks.identity import connect

    client, _ = connect(host, sandbox.workspace_url(host), AuthSettings(), sandbox.supplied_credentials)
    return client


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with the two-cluster example config (single environment `default`)."""
    (tmp_path / "home").mkdir()
    proj = Project(tmp_path, copy.deepcopy(BASE_CONFIG))
    proj.write_config()
    return proj


def use_azurite(project: Project) -> None:
    """This project's CLI runs put the sandbox's DLZ on Azurite (installed, or the test fails/skips).

    By path: the CLI runs with the project's own HOME, where the per-machine install is not."""
    project.extra_env["PROVISION_AZURITE"] = str(require_azurite())


def require_azurite() -> Path:
    """Tests of Azure Blob semantics run on Azurite: skipped where it is not installed, never on CI.

    README's test command must pass on a fresh machine; `.ci/run` installs Azurite and sets CI,
    so there a missing Azurite is a failure, not a quiet skip."""
    from provisioner.sandbox.azurite import AZURITE_VERSION, find_azurite

    executable = find_azurite(os.environ)
    if executable is not None:
        return executable
    if os.environ.get("CI") != "true":
        pytest.skip(f"needs Azurite: Node.js and `npm install azurite@{AZURITE_VERSION}` (.ci/run installs both)")
    pytest.fail(
        f"Azurite is not installed: `npm install azurite@{AZURITE_VERSION}` and put its node_modules/.bin on PATH "
        "(.ci/run does) — this run must test the DLZ on Azure Blob semantics"
    )


@pytest.fixture(params=["azurite", "oracle"])
def dlz_backend(request: pytest.FixtureRequest) -> str:
    """Each sandbox DLZ backend in turn; `PROVISION_AZURITE=off` selects the oracle in CLI runs."""
    if request.param == "azurite":
        require_azurite()
    return str(request.param)


@pytest.fixture
def out() -> io.StringIO:
    """What an in-process run's console printed."""
    return io.StringIO()


@pytest.fixture
def ctx(project: Project, out: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunContext]:
    """An in-process `RunContext` on the project's sandbox, printing into `out`. inline mode:
    Terraform alone creates everything (secret_scope needs the tool's secret step)."""
    from tests.project_helpers import in_process

    project.config["sas"] = {"mode": "inline"}
    project.write_config()
    with in_process(project, monkeypatch, out) as context:
        yield context
