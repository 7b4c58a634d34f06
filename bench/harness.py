"""Timing, statistics and throwaway sandbox projects for `bench/run.py`.

Benchmarks compare two sides *in one run*: each repetition times both sides back to back,
alternating which goes first (ABBA), so drift on a shared machine (other jobs, CPU
frequency, page cache) hits both sides alike and the ratio stays meaningful even when the
absolute numbers wander.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from provisioner.terraform.guard import PROVIDER_SERVER_ENV, server_argv, uses_providers

if TYPE_CHECKING:
    from provisioner.run.context import RunContext

REPO = Path(__file__).resolve().parent.parent

# Throwaway secrets for the sandbox: both sides of every comparison use the same ones.
BENCH_AEP_SECRET = "bench-aep-client-secret-0000000000"
BENCH_DATABRICKS_TOKEN = "dapi-bench-token-000000000000000000"
ORG_ID = "1234ABCD5678EF90ABCD1234@AdobeOrg"
CLIENT_ID = "0123456789abcdef0123456789abcdef"


# ---- statistics ---------------------------------------------------------------------------


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user+sys of the process tree, when measured

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def text(self, unit: str = "s") -> str:
        """`1.234 s (1.201-1.290, n=5)`: median, then min-max as the spread."""
        scale, fmt = (1000.0, "{:.0f}") if unit == "ms" else (1.0, "{:.3f}")
        m, lo, hi = (fmt.format(v * scale) for v in (self.median, self.low, self.high))
        return f"{m} {unit} ({lo}-{hi}, n={len(self.values)})"


def ratio_samples(a: Samples, b: Samples) -> Samples:
    """Per-repetition ratios a/b (pairs timed back to back), so their spread is honest."""
    return Samples([x / y for x, y in zip(a.values, b.values, strict=False) if y > 0])


def children_cpu() -> float:
    """user+sys seconds of this process and every finished child process tree (grandchildren
    included once their parent waited for them: Terraform waits for its providers). This
    process counts too: for raw Terraform, its sandbox server answers the providers."""
    total = 0.0
    for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def interleaved(sides: Mapping[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, Samples]:
    """Time every side `reps` times, alternating the order each repetition.

    Besides wall time, records the CPU time of the child process trees each side ran: on a
    loaded machine wall time stretches, CPU time much less.
    """
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    out = {name: Samples() for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else list(reversed(names))
        for name in order:
            cpu = children_cpu()
            started = time.perf_counter()
            sides[name]()
            out[name].add(time.perf_counter() - started)
            out[name].cpu.append(children_cpu() - cpu)
    return out


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    measured: str
    goal: str
    met: bool | None  # None: reported, no goal
    detail: list[str]


# ---- the machine --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    tf = shutil.which("terraform") or "terraform"
    try:
        version = subprocess.run(
            [tf, "version"], capture_output=True, text=True, env={**os.environ, "CHECKPOINT_DISABLE": "1"}, timeout=30
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        version = "not found"
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu model": model or "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "terraform": version,
        "os": f"{platform.system()} {platform.release()}",
        "load average at start (1/5/15 min)": load,
    }


# ---- throwaway projects -------------------------------------------------------------------


# A workspace pins at most 100 clusters (provisioner/databricks/pinning.py): past that, the
# bench's clusters are left unpinned, as a large workspace's would be.
PINNED_CLUSTERS = 100


def cluster(i: int) -> dict[str, Any]:
    return {
        "name": f"bench-{i:04d}",
        **({} if i < PINNED_CLUSTERS else {"is_pinned": False}),
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "num_workers": 1,
        "autotermination_minutes": 30,
        "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
        "custom_tags": {"team": "bench", "index": str(i)},
    }


def config_doc(clusters: int, envs: int = 0, mode: str = "secret_scope") -> dict[str, Any]:
    """provision.yaml: `clusters` clusters; with envs > 0, that many environments, each with
    its own AEP sandbox (own DLZ) and its own workspace (own secret scope), as real teams run."""
    doc: dict[str, Any] = {
        "aep": {"org_id": ORG_ID, "client_id": CLIENT_ID, "sandbox": "prod"},
        "databricks": {"host": "https://adb-1234567890123456.7.azuredatabricks.net"},
        "sas": {"mode": mode, "secret_scope": "aep-dlz", "secret_key": "dlz-sas-token"},
        "clusters": [cluster(i) for i in range(clusters)],
        "terraform": {"dir": "terraform", "backend": {"type": "local"}},
    }
    if envs:
        doc["environments"] = {
            f"env{j}": {
                "aep": {"sandbox": f"sandbox-{j}"},
                "databricks": {"host": f"https://adb-{1000000000000000 + j}.{j}.azuredatabricks.net"},
            }
            for j in range(envs)
        }
    return doc


def bench_environ() -> dict[str, str]:
    """The environment of every `provision` child: our throwaway secrets, no debug logging."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_LOG", "TF_CLI_ARGS", "TF_VAR_"))}
    env.update(AEP_CLIENT_SECRET=BENCH_AEP_SECRET, DATABRICKS_TOKEN=BENCH_DATABRICKS_TOKEN, NO_COLOR="1")
    env.pop("PROVISION_SANDBOX_DIR", None)
    return env


def provision_argv() -> list[str]:
    """The installed `provision` script beside this interpreter (what users run), else -m."""
    script = Path(sys.executable).with_name("provision")
    return [str(script)] if script.exists() else [sys.executable, "-m", "provisioner.main"]


@dataclass
class Project:
    dir: Path
    clusters: int
    envs: int = 0

    @property
    def config(self) -> Path:
        return self.dir / "provision.yaml"

    def write(self, mode: str = "secret_scope") -> Project:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(config_doc(self.clusters, self.envs, mode), sort_keys=False))
        return self

    def provision(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*provision_argv(), *args, "--sandbox", "--config", str(self.config)],
            cwd=self.dir,
            env=bench_environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if check and done.returncode not in (0, 2):
            raise RuntimeError(f"provision {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done


@contextmanager
def patched_environ(updates: Mapping[str, str], remove: Iterable[str] = ()) -> Iterator[None]:
    """os.environ without `remove` and with `updates`, as it was again afterwards."""
    saved = {k: os.environ.get(k) for k in (*remove, *updates)}
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def sandbox_context(project: Project) -> Iterator[RunContext]:
    """A RunContext with a Sandbox running *in this process* on the project's state dir:
    raw Terraform gets exactly the environment `provision` gives its child."""
    from provisioner.console import Console
    from provisioner.run.context import open_context

    secrets = {"AEP_CLIENT_SECRET": BENCH_AEP_SECRET, "DATABRICKS_TOKEN": BENCH_DATABRICKS_TOKEN}
    quiet = Console(open(os.devnull, "w"), open(os.devnull, "w"), color=False)  # noqa: SIM115
    with patched_environ(secrets), open_context(project.config, quiet, sandbox=True) as ctx:
        yield ctx


def run_quiet(argv: list[str], cwd: Path, env: Mapping[str, str], ok: tuple[int, ...] = (0, 2)) -> int:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.returncode


def run_terraform(argv: list[str], cwd: Path, env: Mapping[str, str], ok: tuple[int, ...] = (0, 2)) -> int:
    """Raw Terraform with the provider arrangement `provision` gives it, minus `provision`.

    When `env` names a provider server (PROVISION_PROVIDER_SERVER: the sandbox's stand-in),
    Terraform's keeper starts it before Terraform and Terraform reattaches every provider
    instance of the command to it (provisioner/terraform/guard.py). The raw side of a
    comparison does the same — server first, then Terraform with TF_REATTACH_PROVIDERS, the
    server stopped after — so that the two sides differ in the wrapper alone; the keeper's
    own process is the wrapper's and is left out. Without the variable: `run_quiet`."""
    spec = env.get(PROVIDER_SERVER_ENV)
    if not spec or not uses_providers(argv):
        return run_quiet(argv, cwd, env, ok)
    server = subprocess.Popen(
        server_argv(spec), env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        line = server.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"the provider server printed nothing (exit {server.wait()})")
        return run_quiet(argv, cwd, {**env, "TF_REATTACH_PROVIDERS": line}, ok)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
