"""`provision plan --all-envs -j 3` on the sandbox: three environments (three AEP sandboxes,
two workspaces) planned concurrently by the real CLI and the real terraform.

One project is shared by the module (each CLI run costs seconds); the tests run in file
order and each leaves the project as the next expects.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.config.model import load_config
from provisioner.console import Console
from provisioner.errors import ExitCode
from provisioner.review.env_results import EnvResult, print_results, worst_exit_code
from provisioner.run.context import RunContext
from provisioner.run.target import RealTarget
from provisioner.sandbox.store import storage_account_name
from tests.helpers.config import BASE_CONFIG, IDENTITY, ORG
from tests.helpers.project import Project
from tests.helpers.zygote import provision_python

ENVS = ("dev", "stage", "prod")
WORKSPACE_1 = "https://adb-1111111111111111.1.azuredatabricks.net"
WORKSPACE_2 = "https://adb-2222222222222222.2.azuredatabricks.net"

THREE_ENVS = {
    **copy.deepcopy(BASE_CONFIG),
    "databricks": {"host": WORKSPACE_1},
    "environments": {
        "dev": {"aep": {"sandbox": "dev"}},
        "stage": {"aep": {"sandbox": "stage"}, "databricks": {"host": WORKSPACE_2}},
        # prod shares dev's workspace: its own secret scope keeps their secrets apart.
        "prod": {"aep": {"sandbox": "prod"}, "sas": {"secret_scope": "aep-dlz-prod"}},
    },
}
SUMMARY_RE = re.compile(r"^(\d+) environments, (\d+) with changes, (\d+) unchanged, (\d+) failed$", re.MULTILINE)
ROW_RE = re.compile(r"^  (\w+)\s+(changes|unchanged|FAILED)\s+([\d.]+)s", re.MULTILINE)


@dataclass
class Run:
    code: int
    output: str  # stdout and stderr merged in write order, as a CI log shows them
    seconds: float

    def summary(self) -> tuple[int, int, int, int]:
        found = SUMMARY_RE.findall(self.output)
        assert len(found) == 1, self.output[-3000:]
        return tuple(int(n) for n in found[0])  # type: ignore[return-value]

    def rows(self) -> dict[str, tuple[str, float]]:
        tail = self.output[SUMMARY_RE.search(self.output).start() :]  # type: ignore[union-attr]
        return {env: (state, float(secs)) for env, state, secs in ROW_RE.findall(tail)}

    def sections(self) -> dict[str, str]:
        """Buffered output: `── env ───` then that environment's lines, nothing before the first."""
        parts = re.split(r"^── (\w+) ─+$", self.body(), flags=re.MULTILINE)
        # Only run-level lines may come first (the sandbox says once which DLZ it uses).
        before = [x for x in parts[0].strip().splitlines() if not x.startswith("==> sandbox:")]
        assert before == [], f"output before the first section: {parts[0]!r}"
        names = parts[1::2]
        assert len(set(names)) == len(names), f"an environment printed more than one section: {names}"
        return dict(zip(names, parts[2::2], strict=True))

    def body(self) -> str:
        """Everything before the summary."""
        return self.output[: SUMMARY_RE.search(self.output).start()]  # type: ignore[union-attr]


def run_merged(project: Project, *args: str, timeout: float = 240) -> Run:
    argv = [provision_python(), "-m", "provisioner.main", *args, "--config", str(project.config_path), "--sandbox"]
    started = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=project.dir,
        env=project.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, time.monotonic() - started)


def markers(env: str) -> tuple[str, ...]:
    """Strings that appear only in this environment's output."""
    return (f"terraform/{env}", storage_account_name(ORG, env), f"{env}: ")


def owners(line: str) -> set[str]:
    return {env for env in ENVS if any(m in line for m in markers(env))}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("three-envs")
    (root / "home").mkdir()
    project = Project(root, copy.deepcopy(THREE_ENVS))
    project.write_config()
    yield project


@pytest.fixture(scope="module")
def first_plan(three: Project) -> Run:
    return run_merged(three, "plan", "--all-envs", "-j", "3")


def test_buffered_sections_never_interleave(first_plan: Run) -> None:
    run = first_plan
    assert run.code == 2, run.output[-3000:]
    assert run.summary() == (3, 3, 0, 0)
    sections = run.sections()
    assert sorted(sections) == sorted(ENVS)
    for name, text in sections.items():
        for line in text.splitlines():
            assert owners(line) <= {name}, f"a line of another environment in {name}'s section: {line!r}"
        # The whole of the environment's run is inside its section: ours and Terraform's lines.
        assert f"rendered terraform/{name}:" in text
        assert f"initialised terraform/{name}" in text
        assert storage_account_name(ORG, name) in text
        assert "Plan: 3 to add, 0 to change, 0 to destroy." in text
        assert f"==> {name}: changes planned" in text
    assert set(run.rows()) == set(ENVS)
    assert all(state == "changes" for state, _ in run.rows().values())


def test_provider_is_linked_from_one_mirror_not_copied_per_environment(three: Project, first_plan: Run) -> None:
    assert first_plan.code == 2
    mirror = (three.sandbox_dir / "mirror").resolve()
    targets = set()
    for env in ENVS:
        platform_dirs = list(
            (three.root(env) / ".terraform" / "providers" / "registry.terraform.io" / "databricks" / "databricks").glob(
                "*/*"
            )
        )
        assert len(platform_dirs) == 1, platform_dirs
        (installed,) = platform_dirs
        assert installed.is_symlink(), f"{installed} is a copy, not a link to the shared mirror"
        targets.add(installed.resolve())
    assert len(targets) == 1
    assert mirror in next(iter(targets)).parents


def test_stream_prefixes_every_line_and_credential_fetches_overlap(three: Project, first_plan: Run) -> None:
    assert first_plan.code == 2
    latency = 3.0
    three.store().set_faults(aep_latency_ms=int(latency * 1000))
    try:
        run = run_merged(three, "plan", "--all-envs", "-j", "3", "--stream")
    finally:
        three.store().clear_faults()
    assert run.code == 2, run.output[-3000:]
    assert run.summary() == (3, 3, 0, 0)
    seen = set()
    for line in run.body().rstrip("\n").splitlines():  # the summary follows one blank line
        found = re.match(r"^\[(\w+)\] ", line)
        assert found and found.group(1) in ENVS, f"a streamed line without its [env] prefix: {line!r}"
        assert not re.search(r".\[(dev|stage|prod)\] ", line), f"two lines run together: {line!r}"
        assert owners(line) <= {found.group(1)}, f"line tagged {found.group(1)} carries another env: {line!r}"
        seen.add(found.group(1))
    assert seen == set(ENVS)
    # Each credentials answer takes `latency` seconds. Had the fetches run one after another,
    # the last environment would finish at least 2 x latency after the first.
    seconds = [secs for _, secs in run.rows().values()]
    assert min(seconds) >= latency
    assert max(seconds) - min(seconds) < latency, f"credential fetches did not overlap: {run.rows()}"


def test_one_failing_environment_does_not_stop_the_others(three: Project, first_plan: Run) -> None:
    assert first_plan.code == 2
    state = three.root("stage") / "terraform.tfstate"
    state.write_text("not json\n")  # stage's state is unreadable: its plan fails
    try:
        run = run_merged(three, "plan", "--all-envs", "-j", "3")
    finally:
        state.unlink()
    assert run.code == 1, run.output[-3000:]  # failure beats changes
    assert run.summary() == (3, 2, 0, 1)
    rows = run.rows()
    assert rows["stage"][0] == "FAILED"
    assert rows["dev"][0] == rows["prod"][0] == "changes"
    failed_row = next(line for line in run.output.splitlines() if line.startswith("  stage") and "FAILED" in line)
    assert "could not lock the state" in failed_row and "Unsupported state file format" in failed_row
    sections = run.sections()
    for env in ("dev", "prod"):
        assert "Plan: 3 to add" in sections[env]
    assert "error: terraform plan in" in sections["stage"]


def test_unchanged_environments_collapse_and_exit_code_is_the_worst(three: Project, first_plan: Run) -> None:
    assert first_plan.code == 2
    # Apply the three environments at once (their own roots and states; one sandbox).
    applies = [
        subprocess.Popen(
            [
                provision_python(),
                "-m",
                "provisioner.main",
                "apply",
                "--env",
                env,
                "--auto-approve",
                "--config",
                str(three.config_path),
                "--sandbox",
            ],
            cwd=three.dir,
            env=three.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in ENVS
    ]
    for proc in applies:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]

    unchanged = run_merged(three, "plan", "--all-envs", "-j", "3")
    assert unchanged.code == 0, unchanged.output[-3000:]
    assert unchanged.summary() == (3, 0, 3, 0)
    assert unchanged.rows() == {}, "unchanged environments get no row of their own"
    assert "\n  unchanged: dev, prod, stage\n" in unchanged.output

    config = copy.deepcopy(THREE_ENVS)
    config["environments"]["stage"]["clusters"] = copy.deepcopy(BASE_CONFIG["clusters"])
    config["environments"]["stage"]["clusters"][1]["num_workers"] = 2
    three.write_config(config)
    try:
        mixed = run_merged(three, "plan", "--all-envs", "-j", "3")
    finally:
        three.write_config(copy.deepcopy(THREE_ENVS))
    assert mixed.code == 2, mixed.output[-3000:]  # changes beat no changes
    assert mixed.summary() == (3, 1, 2, 0)
    assert set(mixed.rows()) == {"stage"} and mixed.rows()["stage"][0] == "changes"
    assert "\n  unchanged: dev, prod\n" in mixed.output


# ---- without a terraform run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "worst"),
    [((0, 0, 0), 0), ((0, 2, 0), 2), ((2, 1, 0), 1), ((1, 0, 0), 1), ((2, 2, 2), 2), ((), 0)],
)
def test_worst_exit_code(codes: tuple[int, ...], worst: int) -> None:
    assert worst_exit_code([EnvResult(f"e{i}", ExitCode(c), 1.0) for i, c in enumerate(codes)]) == worst


def test_summary_lists_failures_first_and_collapses_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        print_results(
            Console(fh, fh, color=False),
            [
                EnvResult("b", ExitCode.NO_CHANGES, 1.0),
                EnvResult("a", ExitCode.CHANGES, 2.0),
                EnvResult("c", ExitCode.ERROR, 3.0, "boom"),
                EnvResult("d", ExitCode.NO_CHANGES, 1.0),
            ],
        )
    lines = out.read_text().splitlines()
    assert lines[1] == "4 environments, 1 with changes, 2 unchanged, 1 failed"
    assert lines[2].split() == ["c", "FAILED", "3.0s", "boom"]
    assert lines[3].split() == ["a", "changes", "2.0s"]
    assert lines[4] == "  unchanged: b, d"
    assert len(lines) == 5


def test_real_runs_share_one_plugin_cache_across_environments(tmp_path: Path) -> None:
    """Outside the sandbox every environment's terraform gets the same TF_PLUGIN_CACHE_DIR:
    the real provider (~100 MB) is downloaded once per machine."""
    project = Project(tmp_path, copy.deepcopy(THREE_ENVS))
    project.write_config()
    config = load_config(project.config_path, environ={})
    home = tmp_path / "home"
    environ = {"PATH": os.environ["PATH"], "HOME": str(home)}
    ctx = RunContext(config, Console(color=False), environ, RealTarget(environ))
    caches = {
        ctx.runner(env, None, identity=IDENTITY).env.values.get("TF_PLUGIN_CACHE_DIR")
        for env in config.environments.values()
    }
    assert caches == {str(home / ".cache" / "dlz-provisioner" / "plugins")}
    assert (home / ".cache" / "dlz-provisioner" / "plugins").is_dir()

    # A cache the user (or CI) already set up is used as it is.
    cached = {**environ, "TF_PLUGIN_CACHE_DIR": str(tmp_path / "ci-cache")}
    ctx = RunContext(config, Console(color=False), cached, RealTarget(cached))
    assert ctx.runner(config.environments["dev"], None, identity=IDENTITY).env.values["TF_PLUGIN_CACHE_DIR"] == str(
        tmp_path / "ci-cache"
    )
