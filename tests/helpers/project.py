"""A throwaway project (provision.yaml + terraform/ + sandbox state) in a directory, driven through
the real CLI in a subprocess with the real terraform binary, and what its sandbox holds afterwards."""

from __future__ import annotations

import atexit
import copy
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cache_dir import tool_cache_dir
from provisioner.console import Console
from provisioner.run.context import RunContext, open_context
from provisioner.sandbox.store import SandboxStore
from provisioner.terraform import TerraformState
from provisioner.terraform.binary import VERSIONS_FILE
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, ORG, SANDBOX, WORKSPACE_KEY
from tests.helpers.zygote import ZYGOTE, forked_providers, forks

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


def _copy_once(source: Callable[[], Path | None], target: Path) -> None:
    """The session's file into a project's HOME, unless it is there (or the session has none)."""
    if not target.exists() and (found := source()) is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, target)  # a fresh mtime: the provider trusts its certificate


# The tool remembers the terraform binary's version in its cache directory (binary.py), under
# the project's own HOME: each project's first command would run `terraform version` again
# (~280 a run). Probed once per test session by the tool itself and copied, as the certificate
# is; a binary other than this one (a test's TERRAFORM_BINARY) is not in it and is probed.
@cache
def _session_terraform_versions() -> Path | None:
    home = Path(tempfile.mkdtemp(prefix="terraform-versions-"))
    environ = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"} | {"HOME": str(home)}
    code = "from provisioner.terraform.binary import find_terraform; find_terraform()"
    if subprocess.run([sys.executable, "-c", code], env=environ, check=False).returncode != 0:
        return None  # no terraform: the tests that need it skip
    found = tool_cache_dir(environ) / VERSIONS_FILE
    return found if found.is_file() else None


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
        home = self.dir / "home"
        _copy_once(_session_certificate, home / _CERT_CACHE)
        _copy_once(_session_terraform_versions, tool_cache_dir({"HOME": str(home)}) / VERSIONS_FILE)
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
        env.update(forked_providers())  # the stand-in provider forked, not started (tests/helpers/zygote.py)
        env.update(self.extra_env)
        env.update(extra)
        return env

    def cli_args(self, *args: str, sandbox: bool = True) -> tuple[str, ...]:
        """`provision`'s arguments for a command on this project: `args`, its config, `--sandbox`."""
        return (*args, "--config", str(self.config_path), *(["--sandbox"] if sandbox else []))

    def run(
        self,
        *args: str,
        sandbox: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 180,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args = self.cli_args(*args, sandbox=sandbox)
        child_env = dict(env) if env is not None else self.env()
        if forks(child_env):
            return ZYGOTE.run(args, cwd=self.dir, env=child_env, input=input, timeout=timeout)
        return subprocess.run(
            [sys.executable, "-m", "provisioner.main", *args],
            cwd=self.dir,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def store(self) -> Any:  # untyped on purpose: tests index its snapshots freely
        return SandboxStore(self.sandbox_dir)


def make_project(root: Path, mode: str = "secret_scope", **overlay: Any) -> Project:
    """A project in `root` with the base config, in SAS `mode`, top-level keys replaced by `overlay`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    config = copy.deepcopy(BASE_CONFIG)
    config["sas"] = {**config["sas"], "mode": mode}
    config.update(overlay)
    project = Project(root, config)
    project.write_config()
    return project


def new_project(directory: Path, config: Mapping[str, Any] | None = None, **extra_env: str) -> Project:
    """A project whose crash logs and temp files stay inside it, where a leak scan of its tree sees them."""
    (directory / "home").mkdir(parents=True, exist_ok=True)
    proj = Project(directory, copy.deepcopy(dict(config or BASE_CONFIG)))
    # Crash logs (tempfile.mkstemp) land in the project's tmp/, where the file scan sees them.
    proj.extra_env.update({"TMPDIR": str(short_tmp(directory)), **extra_env})
    proj.write_config()
    return proj


def short_tmp(directory: Path) -> Path:
    """`directory/tmp`, or a link there to a short directory: the provider plugin's unix socket
    lives under TMPDIR (`tf.runner`: `<TMPDIR>/tmpXXXXXXXX/py-tf-plugin.sock`, as go-plugin's
    does), and a socket path has at most 107 bytes — which a pytest-xdist worker's tmp_path
    (`…/popen-gw1/<test name>/tmp`) can pass. `scan_tree` follows the link."""
    inside = directory / "tmp"
    if inside.is_symlink():  # a copy of a prepared project: its own temp dir, not the original's
        inside.unlink()
    if len(str(inside)) <= 70:
        inside.mkdir(exist_ok=True)
        return inside
    if inside.exists():
        shutil.rmtree(inside)
    short = Path(tempfile.mkdtemp(prefix="dlz-"))
    atexit.register(shutil.rmtree, short, ignore_errors=True)
    inside.symlink_to(short, target_is_directory=True)
    return short


@contextmanager
def in_process(project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO) -> Iterator[RunContext]:
    """The sandbox and a run's context in this process, as `open_context` gives them to a command."""
    for key, value in project.env().items():
        monkeypatch.setenv(key, value)
    with open_context(project.config_path, Console(out, out, color=False), sandbox=True) as context:
        yield context


def applied(project: Project, *, copy_allowed: bool = True) -> Project:
    """`project` as a first `apply --auto-approve` leaves it: its root, its Terraform state and
    its sandbox (workspace, AEP, secrets).

    A test that starts from an applied project does not test the apply, and a first apply costs
    ~3 CPU-s (issue 24: the suite is CPU-bound), so a fresh project whose config a worker of this
    run has applied before is a copy of that one (`_first_apply`). The copy lives at another path, so its
    next command runs `terraform init` again, as a clone of a repository would. A project with
    extra environment (a running `serve`, a trace, faults) is applied for real, as is every apply
    a test checks the output or journal of (those call `project.run("apply", …)`), and one that
    needs its root initialised where it is (`copy_allowed=False`: the plan ahead starts only then)."""
    if not copy_allowed or project.extra_env.keys() - {"TMPDIR"} or _has_state(project):
        done = project.run("apply", "--auto-approve")
        assert done.returncode == 0, done.stderr
        return project
    # Not HOME and TMPDIR (the project's own) nor pytest's per-test variables (PYTEST_CURRENT_TEST).
    env = {k: v for k, v in project.env().items() if k not in ("HOME", "TMPDIR") and not k.startswith("PYTEST_")}
    template = _first_apply(project.config_path.read_text(encoding="utf-8"), env)
    _copy_applied(template, project.dir)
    return project


# Where the first applies are kept, one directory per (provision.yaml's text, the CLI's
# environment but its HOME): set by tests/conftest.py to a directory all xdist workers of the run
# share, which pytest removes with the run's other temporary directories. None: this process's own.
APPLIED_DIR: Path | None = None


def _has_state(project: Project) -> bool:
    """Has anything run in this project (a root rendered, a sandbox started)?"""
    return (project.dir / "terraform").exists() or project.sandbox_dir.exists()


def _first_apply(config_text: str, env: dict[str, str]) -> Path:
    """The project applied with this config and environment, applied now by whichever worker
    asks first; the others wait for it (a lock file) and copy it."""
    key = hashlib.sha256(json.dumps([config_text, env], sort_keys=True).encode()).hexdigest()[:16]
    shared = _applied_dir()
    template = shared / key
    with (shared / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / ".applied").exists():
            shutil.rmtree(template, ignore_errors=True)  # what a worker that died half-way left
            project = make_project(template)
            project.config_path.write_text(config_text, encoding="utf-8")
            done = project.run("apply", "--auto-approve", env={**env, "HOME": str(template / "home")})
            assert done.returncode == 0, done.stderr
            (template / ".applied").touch()
    return template


def _applied_dir() -> Path:
    global APPLIED_DIR
    if APPLIED_DIR is None:
        APPLIED_DIR = Path(tempfile.mkdtemp(prefix="dlz-applied-"))
        atexit.register(shutil.rmtree, APPLIED_DIR, ignore_errors=True)
    APPLIED_DIR.mkdir(parents=True, exist_ok=True)
    return APPLIED_DIR


def _copy_applied(template: Path, directory: Path) -> None:
    """The template's root, state and sandbox state into `directory` (its config is the same).
    No process holds the template's sandbox store open: the apply that wrote it has exited. The
    sandbox's init directories name the template's root, so they stay behind."""
    shutil.copytree(template / "terraform", directory / "terraform", symlinks=True)
    sandbox = template / ".provision" / "sandbox"
    shutil.copytree(sandbox, directory / ".provision" / "sandbox", symlinks=True, ignore=_init_dirs(sandbox))


def _init_dirs(sandbox: Path) -> Callable[[str, list[str]], set[str]]:
    return lambda directory, names: {"init"} if Path(directory) == sandbox else set()


def token(project: Project) -> str:
    """The DLZ SAS token AEP holds now."""
    return str(project.store().dlz_credentials(ORG, SANDBOX)["SASToken"])


def revocations(project: Project) -> int:
    return int(project.store().snapshot().get("revoked_tokens", 0))


def cluster_ids(project: Project, env: str = "default") -> dict[str, str]:
    """Cluster name → id, from the environment's root's local state."""
    return TerraformState(json.loads((project.root(env) / "terraform.tfstate").read_text())).clusters()


def access(project: Project) -> dict[str, bool]:
    store = project.store()
    return {name: store.dlz_access(WORKSPACE_KEY, cid) for name, cid in cluster_ids(project).items()}


def state_cluster_ids(project: Project) -> set[str]:
    """The cluster ids in the default root's local state (none before the first apply)."""
    path = project.root() / "terraform.tfstate"
    text = path.read_text() if path.exists() else ""
    if not text:
        # Terraform's lock creates the file empty and only its unlock removes it if still empty
        # (terraform internal/states/statemgr/filesystem.go, createStateFiles and Unlock), so a
        # first apply killed before it persisted leaves it so; an empty state file is "no
        # state" (internal/states/statefile/read.go, ErrNoState). A torn write is not empty,
        # and still fails below.
        return set()
    state = json.loads(text)  # consistent = parseable and complete
    return {
        inst["attributes"]["cluster_id"]
        for r in state["resources"]
        if r["type"] == "databricks_cluster"
        for inst in r["instances"]
    }


def workspace_cluster_ids(project: Project) -> set[str]:
    """Every cluster the sandbox's workspace holds, whoever made it."""
    return {c["cluster_id"] for c in project.store().list_clusters(WORKSPACE_KEY)}


def served(trace: Path, suffix: str) -> bool:
    """Has the sandbox's request journal (PROVISION_SANDBOX_TRACE) a call whose path ends so?"""
    if not trace.exists():
        return False
    return any(json.loads(line)["path"].endswith(suffix) for line in trace.read_text().splitlines())


def held_until_served(
    monkeypatch: pytest.MonkeyPatch, trace: Path, suffix: str, owner: object, name: str, *, seconds: float = 20
) -> list[bool]:
    """`owner.name` (a function or a method) of in-process runs answers only once the sandbox has
    served a call whose path ends with `suffix`, or after `seconds`: code that made that call only
    after this answer finds it unserved. Each call appends whether it was served by then."""
    monkeypatch.setenv("PROVISION_SANDBOX_TRACE", str(trace))
    seen: list[bool] = []
    original = getattr(owner, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + seconds
        while not served(trace, suffix) and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(served(trace, suffix))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)
    return seen


def tree_fingerprint(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mtime of every file: 'unchanged' means neither moved."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".terraform" not in p.parts
    }
