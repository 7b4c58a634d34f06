"""Issues 16 and 25 at scale: status, the revocation window, plan, verify and a rotation's
pre-window time at 1, 10, 50 and 200 clusters, under the `realistic` sandbox profile (and
`fast` on request), with and without a 20 req/s workspace rate limit.

Every `provision` run here writes the sandbox's request journal (PROVISION_SANDBOX_TRACE,
docs/sandbox.md), so figures come from what the workspace emulator saw, not from guesses:

- status: the span of its workspace calls (first request in → last answer out) against one
  API round trip (the median duration of the 200-answers in the same run). Goal (realistic,
  no limit, 50 clusters): span ≤ 3 round trips.
- revocation window: the window `provision rotate` prints (refresh answered → every running
  cluster seen RUNNING on the new token) against the floor = one secret write (the
  `secrets/put` call's duration in the journal) + (N - 1)/R to issue the N restarts under a
  workspace limit of R requests/s (0 without one) + the slowest of the restarts the rotation
  caused (each restart's drawn duration, recorded by the store in `last_start`).
  The physical outage (refresh answered → last restart finished, from the journal and the
  store) is shown too: the printed window adds the poll that observes RUNNING.
- plan: `provision plan` vs raw `terraform plan` (same child environment, same server
  profile), and how much of the difference is the two AEP round trips (IMS token,
  credentials GET) that obtaining the SAS token needs whatever tool runs Terraform.
- verify: `provision verify --json` (every running cluster probed, `--parallel` at a time)
  against its bound, ⌈N / parallel⌉ waves of the median probe.
- pre-window: a rotation's time from the command's start to the refresh (the window's
  opening), and what it read before it (AEP GETs, scope listings, from the journal).

Projects are applied once per size on the fast profile (creating 200 clusters at 20 s a
start would dominate the run); each variant then runs its steps. Past 100 clusters the
bench's clusters are unpinned (a workspace pins at most 100: harness.PINNED_CLUSTERS).
`python bench/run.py --only window --sizes 200` runs one step at one size.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import Project, Row, Samples, ratio_samples

from provisioner.sandbox.profile import LATENCY_SEED_ENV
from provisioner.sandbox.store import SandboxStore

SIZES = (1, 10, 50, 200)
STEPS = ("status", "plan", "window", "verify", "prewindow")
PLAN_REPS_SMALL = 7  # pairs per plan at 1 and 10 clusters (3 at 50 and 200)
WINDOW_REPS_GATED = 3  # rotations for a gated window figure; 1 elsewhere
LIMIT_RPS = 20.0
_WINDOW_RE = re.compile(r"revocation window[^0-9]*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.IGNORECASE)
_PROFILE_KEYS = (
    LATENCY_SEED_ENV,
    "PROVISION_SANDBOX_PROFILE",
    "PROVISION_SANDBOX_RATE_LIMIT",
    "PROVISION_SANDBOX_CLUSTER_START_SECONDS",
    "PROVISION_SANDBOX_TRACE",
    "DATABRICKS_RATE_LIMIT",
)


@dataclass(frozen=True)
class Variant:
    profile: str
    limit: float | None = None

    @property
    def label(self) -> str:
        return self.profile + (f" + {self.limit:.0f} req/s limit" if self.limit else "")

    def environ(self, trace: Path) -> dict[str, str]:
        env = {
            "PROVISION_SANDBOX_PROFILE": self.profile,
            "PROVISION_SANDBOX_RATE_LIMIT": str(self.limit or 0),
            "PROVISION_SANDBOX_TRACE": str(trace),
        }
        if self.profile == "fast":
            env["PROVISION_SANDBOX_CLUSTER_START_SECONDS"] = "0.3"
        if self.limit:
            # The user states the workspace's limit as the SDKs read it (the provider honours
            # it too): the tool spaces its calls 1/R apart (provisioner/databricks/ratelimit.py).
            env["DATABRICKS_RATE_LIMIT"] = f"{self.limit:.0f}"
        return env


REALISTIC, LIMITED, FAST = Variant("realistic"), Variant("realistic", LIMIT_RPS), Variant("fast")
VARIANTS = (REALISTIC, LIMITED)  # FAST on request (BENCH_SCALE_FAST=1): it has no goal of its own


@dataclass
class Call:
    route: str
    method: str
    path: str
    status: int
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    wall: float
    calls: list[Call] = field(default_factory=list)
    began: float = 0.0  # epoch seconds, the journal's clock

    def workspace(self, suffix: str = "") -> list[Call]:
        return [c for c in self.calls if c.route == "/ws/" and c.path.endswith(suffix)]

    @property
    def throttled(self) -> int:
        return sum(c.status == 429 for c in self.calls)


def run(project: Project, variant: Variant, *args: str, ok: tuple[int, ...] = (0,), seed: str | None = None) -> Run:
    """`provision <args> --sandbox` under `variant`; `seed` draws the sandbox's waits (server.py)."""
    trace = project.dir / "trace.jsonl"
    trace.unlink(missing_ok=True)
    env = {k: v for k, v in harness.bench_environ().items() if k not in _PROFILE_KEYS}
    env.update(variant.environ(trace))
    if seed is not None:
        env[LATENCY_SEED_ENV] = seed
    began, started = time.time(), time.perf_counter()
    done = subprocess.run(
        [*harness.provision_argv(), *args, "--sandbox", "--config", str(project.config)],
        cwd=project.dir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    calls = [Call(**json.loads(line)) for line in trace.read_text().splitlines()] if trace.exists() else []
    trace.unlink(missing_ok=True)
    if done.returncode not in ok:
        raise RuntimeError(f"provision {' '.join(args)} ({variant.label}) exit {done.returncode}: {done.stderr[-600:]}")
    return Run(done.returncode, done.stdout, done.stderr, wall, calls, began)


def store_state(project: Project) -> dict[str, Any]:
    return SandboxStore(project.dir / ".provision" / "sandbox").snapshot()


# ---- one size, every variant ----------------------------------------------------------------


@dataclass
class Figures:
    """What one (size, variant) measured; rows are built once every size has run."""

    status_span: Samples = field(default_factory=Samples)
    status_rtt: Samples = field(default_factory=Samples)
    status_wall: Samples = field(default_factory=Samples)
    status_429: int = 0
    window: Samples = field(default_factory=Samples)
    floor: Samples = field(default_factory=Samples)
    floor_write: Samples = field(default_factory=Samples)
    floor_issue: Samples = field(default_factory=Samples)
    floor_restart: Samples = field(default_factory=Samples)
    issued: Samples = field(default_factory=Samples)  # refresh answered → last restart requested
    outage: Samples = field(default_factory=Samples)
    window_429: int = 0
    window_detail: list[str] = field(default_factory=list)
    plan_ours: Samples = field(default_factory=Samples)
    plan_raw: Samples = field(default_factory=Samples)
    # raw terraform as a user runs it in a sandbox root: one launcher per provider instance
    plan_launcher: Samples = field(default_factory=Samples)
    plan_aep: Samples = field(default_factory=Samples)
    plan_429: int = 0
    plan_steps: list[str] = field(default_factory=list)
    verify_wall: Samples = field(default_factory=Samples)
    verify_probe: Samples = field(default_factory=Samples)  # each run's probes' seconds, summed
    verify_longest: Samples = field(default_factory=Samples)  # each run's longest probe
    verify_detail: list[str] = field(default_factory=list)
    prewindow: Samples = field(default_factory=Samples)
    prewindow_detail: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def measure_status(project: Project, variant: Variant, reps: int, out: Figures) -> None:
    for _ in range(reps):
        r = run(project, variant, "status", ok=(0, 3))
        calls = r.workspace()
        answered = [c.seconds for c in calls if c.status == 200]
        out.status_wall.add(r.wall)
        out.status_span.add(max(c.end for c in calls) - min(c.start for c in calls))
        out.status_rtt.add(statistics.median(answered))
        out.status_429 += r.throttled


def measure_window(project: Project, variant: Variant, reps: int, out: Figures) -> None:
    for _ in range(reps):
        r = run(project, variant, "rotate", "--auto-approve", "--no-verify", "--timeout", "600")
        match = _WINDOW_RE.search(r.stdout + r.stderr)
        if match is None:
            raise RuntimeError(f"rotate printed no revocation window: {r.stderr[-300:]}")
        printed = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
        refresh = [c for c in r.calls if c.method == "POST" and c.path.endswith("/landingzone/credentials")]
        if not refresh:
            raise RuntimeError("no refresh in the journal")
        opened = refresh[-1].end
        puts = [c for c in r.workspace("/secrets/put") if c.start >= opened and c.status == 200]
        write = puts[0].seconds if puts else 0.0
        starts = [
            c["last_start"]
            for ws in store_state(project)["workspaces"].values()
            for c in ws["clusters"].values()
            if c.get("last_start") and c["last_start"]["began"] >= opened
        ]
        if not starts:
            raise RuntimeError("the rotation restarted no cluster")
        slowest = max(s["seconds"] for s in starts)
        # N restarts under R requests/s: the first goes at once, the last (N - 1)/R later.
        issue = (len(starts) - 1) / variant.limit if variant.limit else 0.0
        issued = max(s["began"] for s in starts) - opened
        out.window.add(printed)
        out.floor.add(write + issue + slowest)
        out.floor_write.add(write)
        out.floor_issue.add(issue)
        out.floor_restart.add(slowest)
        out.issued.add(issued)
        out.outage.add(max(s["began"] + s["seconds"] for s in starts) - opened)
        out.window_429 += r.throttled
        out.window_detail.append(
            f"floor {write + issue + slowest:.2f} s = secret write {1000 * write:.0f} ms + issue "
            f"({len(starts)} - 1)/R {issue:.2f} s + slowest of {len(starts)} restarts {slowest:.2f} s; "
            f"last restart requested {issued:.2f} s after the refresh; "
            f"{len(r.workspace())} workspace calls in the run, {r.throttled} answered 429"
        )
        _prewindow(r, refresh[-1], out)


def _prewindow(r: Run, refresh: Call, out: Figures) -> None:
    """A rotation's time before the window (command start → refresh sent) and what it read."""
    before = [c for c in r.calls if c.start < refresh.start]
    aep_gets = sum(c.method == "GET" and c.path.endswith("/landingzone/credentials") for c in before)
    listings = sum(c.path.endswith("/secrets/list") for c in before)
    scopes = sum(c.path.endswith("/secrets/scopes/list") for c in before)
    reads = sum(c.path.endswith(("/clusters/list", "/clusters/get")) for c in before)
    out.prewindow.add(refresh.start - r.began)
    out.prewindow_detail.append(
        f"{refresh.start - r.began:.2f} s to the refresh: {aep_gets} AEP credentials GET, {listings} listing of "
        f"the scope (secrets/list), {scopes} of the scopes (scopes/list), {reads} cluster read(s); "
        f"{sum(c.route == '/ws/' for c in before)} workspace calls before it (state reads are local, not journalled)"
    )


def measure_prewindow(project: Project, variant: Variant, reps: int, out: Figures) -> None:
    """Pre-window time alone: a rotation without the window figure (it is recorded anyway)."""
    scratch = Figures()
    measure_window(project, variant, reps, scratch)
    out.prewindow, out.prewindow_detail = scratch.prewindow, scratch.prewindow_detail


def measure_verify(project: Project, variant: Variant, reps: int, out: Figures) -> None:
    for _ in range(reps):
        r = run(project, variant, "verify", "--json", ok=(0, 1, 3))
        doc = json.loads(r.stdout)
        seconds = [float(c["seconds"]) for c in doc.get("clusters", []) if c.get("seconds") is not None]
        out.verify_wall.add(r.wall)
        out.verify_probe.add(sum(seconds))
        out.verify_longest.add(max(seconds, default=float("nan")))
        reached = sum(bool(c.get("reached")) for c in doc.get("clusters", []))
        out.verify_detail.append(
            f"{len(seconds)} clusters probed ({reached} reached), status {doc.get('status')}, "
            f"{len(r.workspace())} workspace calls, {r.throttled} answered 429"
        )


def measure_plan(project: Project, variant: Variant, reps: int, out: Figures) -> None:
    from provisioner.run.context import fetch_credentials

    with variant_environ(variant, project.dir / "raw-trace.jsonl"), harness.sandbox_context(project) as ctx:
        env = ctx.config.select(None, False)[0]
        child = dict(ctx.runner(env, fetch_credentials(ctx, env).sas_token).env.values)
        plan_file = env.root_dir / ".terraform" / "bench-raw.tfplan"
        argv = ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_file}"]
        argv.append("-lock-timeout=0s")
        # Pair i draws both sides' waits from one seed: the provider's calls wait the same on
        # both, so the pair differs in the wrapper only, not in the latencies drawn.
        made = {"ours": itertools.count(), "raw": itertools.count(), "launcher": itertools.count()}

        def raw(name: str, terraform: Callable[[list[str], Path, dict[str, str]], int]) -> Callable[[], None]:
            def side() -> None:
                ctx.target.sandbox.seed_latency(f"plan-{next(made[name])}")
                terraform(argv, env.root_dir, child)

            return side

        sides = {
            "ours": lambda: _ours(project, variant, out, f"plan-{next(made['ours'])}"),
            "raw": raw("raw", harness.run_terraform),
        }
        if project.clusters <= 50:  # a report line; at 200 clusters each side is ~20 s
            sides["launcher"] = raw("launcher", harness.run_quiet)
        timed = harness.interleaved(sides, reps, warmup=0)
        out.plan_raw = timed["raw"]
        out.plan_launcher = timed.get("launcher", Samples())
        plan_file.unlink(missing_ok=True)
    if variant.profile == "realistic" and not variant.limit:
        import profile_plan

        environ = {k: v for k, v in harness.bench_environ().items() if k not in _PROFILE_KEYS}
        environ.update(variant.environ(project.dir / "steps-trace.jsonl"))
        out.plan_steps = profile_plan.wrapper_steps(project, reps=1, environ=environ)
        (project.dir / "steps-trace.jsonl").unlink(missing_ok=True)


def _ours(project: Project, variant: Variant, out: Figures, seed: str) -> None:
    r = run(project, variant, "plan", ok=(0, 2), seed=seed)
    out.plan_ours.add(r.wall)
    aep = [c for c in r.calls if c.route in ("/ims/", "/data/")]
    out.plan_aep.add(sum(c.seconds for c in aep))
    out.plan_429 += r.throttled


@contextmanager
def variant_environ(variant: Variant, trace: Path) -> Iterator[None]:
    """The variant for a Sandbox run inside this process (raw Terraform's server)."""
    with harness.patched_environ(variant.environ(trace), remove=_PROFILE_KEYS):
        try:
            yield
        finally:
            trace.unlink(missing_ok=True)


# ---- rows ---------------------------------------------------------------------------------


# Where a figure is held to its goal (elsewhere it is reported): (step, variant, size).
GATED = {
    ("window", LIMITED, 200),  # issue 25: ≤ 1.05x its floor at 200 clusters under 20 req/s
    ("status", REALISTIC, 50),
    ("status", REALISTIC, 200),
}


def _applied(project: Project) -> bool:
    """The project's root holds its `n` clusters already (a rerun on the same work dir)."""
    states = list(project.dir.glob("terraform/*/terraform.tfstate"))
    if not project.config.exists() or not states:
        return False
    doc = json.loads(states[0].read_text())
    return sum(r.get("type") == "databricks_cluster" for r in doc.get("resources", [])) == project.clusters


def gated(step: str, variant: Variant, n: int) -> bool:
    return (step, variant, n) in GATED or (step == "plan" and variant == REALISTIC)


def measure(
    work: Path,
    quick: bool,
    *,
    sizes: tuple[int, ...] | None = None,
    steps: tuple[str, ...] | None = None,
    variants: tuple[Variant, ...] | None = None,
) -> list[Row]:
    chosen = os.environ.get("BENCH_SCALE_SIZES")  # e.g. "50": one size of the series, no linearity rows
    if sizes is None:
        sizes = tuple(int(n) for n in chosen.split(",")) if chosen else (1, 10) if quick else SIZES
    # e.g. "window": only those steps (a realistic rotation at 200 clusters is over a minute)
    only = set(steps or os.environ.get("BENCH_SCALE_STEPS", ",".join(STEPS)).split(","))
    if variants is None:
        variants = (*VARIANTS, FAST) if os.environ.get("BENCH_SCALE_FAST") else VARIANTS
    results: dict[tuple[int, Variant], Figures] = {}
    for n in sizes:
        project = Project(work / f"scale-{n}", n)
        if not _applied(project):  # `bench/run.py --work DIR` reuses an applied project
            run(project.write(), FAST, "apply", "--auto-approve", "--no-verify")  # verify is its own step
        for variant in variants:
            figures = results[(n, variant)] = Figures()
            # Repetitions kept low so the whole bench stays within ~15 minutes; gated figures get
            # three (one rotation's restart times vary by ±10 %, so a single one moves the verdict
            # across 1.05x). Small plans get more: a few seconds each, and their ratio moves most
            # with the latencies drawn. A failed command is a finding, not the end of the series.
            todo: list[tuple[Callable[[Project, Variant, int, Figures], None], int]] = []
            if "status" in only:
                todo.append((measure_status, 3 if gated("status", variant, n) else 1))
            if "plan" in only and not variant.limit:  # Terraform's calls, throttled like the real provider
                todo.append(
                    (measure_plan, int(os.environ.get("BENCH_PLAN_REPS") or (PLAN_REPS_SMALL if n <= 10 else 3)))
                )
            if "window" in only:
                reps = WINDOW_REPS_GATED if gated("window", variant, n) else 1
                todo.append((measure_window, int(os.environ.get("BENCH_WINDOW_REPS") or reps)))
            elif "prewindow" in only and variant == REALISTIC:
                todo.append((measure_prewindow, 1))
            if "verify" in only and variant == REALISTIC:
                todo.append((measure_verify, 1))
            for measure_step, reps in todo:
                try:
                    measure_step(project, variant, reps, figures)
                except Exception as exc:  # reported in results.md
                    figures.failures.append(f"{measure_step.__name__}: {type(exc).__name__}: {str(exc)[-400:]}")
    failed = [
        Row(f"{n} cluster(s), {v.label}: a command failed", "failed", "no failed command", False, f.failures)
        for (n, v), f in results.items()
        if f.failures
    ]
    builders: dict[str, Callable[[dict[tuple[int, Variant], Figures], tuple[int, ...], tuple[Variant, ...]], list[Row]]]
    builders = {
        "status": status_rows,
        "window": window_rows,
        "plan": plan_rows,
        "verify": verify_rows,
        "prewindow": prewindow_rows,
    }
    wanted = only | ({"prewindow"} if "window" in only else set())
    return failed + [row for step, rows in builders.items() if step in wanted for row in rows(results, sizes, variants)]


def _linearity(figure: str, values: dict[int, float], sizes: tuple[int, ...]) -> Row:
    """Cost per cluster must not grow: t(n_max)/t(n_prev) ≤ n_max/n_prev."""
    goal = "cost per cluster must not grow"
    if len(sizes) < 2:
        return Row(figure, "one size measured", goal, True, [])
    lo, hi = sizes[-2], sizes[-1]
    growth = values[hi] / values[lo] if values[lo] > 0 else float("inf")
    return Row(figure, f"t({hi})/t({lo}) = {growth:.2f} for {hi / lo:.0f}x clusters", goal, growth <= hi / lo, [])


def _gated(
    figure: str, measured: str, goal: str, met: bool, detail: list[str], *, gated: bool, otherwise: str = "report"
) -> Row:
    """A figure held to its goal where the goal applies (`gated`); elsewhere only reported."""
    return Row(figure, measured, goal if gated else otherwise, met if gated else None, detail)


def status_rows(
    results: dict[tuple[int, Variant], Figures], sizes: tuple[int, ...], variants: tuple[Variant, ...]
) -> list[Row]:
    rows = []
    for variant in variants:
        walls = {n: results[(n, variant)].status_wall.median for n in sizes}
        for n in sizes:
            f = results[(n, variant)]
            rtts = f.status_span.median / f.status_rtt.median if f.status_rtt.median >= 0.005 else float("nan")
            rows.append(
                _gated(
                    f"status, {n} cluster(s), {variant.label}: workspace calls' span / one round trip",
                    f"{rtts:.1f} round trips ({1000 * f.status_span.median:.0f} ms; "
                    f"round trip {1000 * f.status_rtt.median:.0f} ms)"
                    if rtts == rtts
                    else f"{1000 * f.status_span.median:.0f} ms (calls answer at once in this profile)",
                    "≤ 3 round trips",
                    rtts <= 3.0,
                    [
                        f"span {f.status_span.text('ms')}; whole command {f.status_wall.text()}",
                        f"429 answers: {f.status_429} (every run exited 0 or 3)",
                    ],
                    gated=gated("status", variant, n),
                    otherwise="report (bound: the rate limit)" if variant.limit else "report",
                )
            )
        rows.append(_linearity(f"status linearity (whole command), {variant.label}", walls, sizes))
    return rows


def window_rows(
    results: dict[tuple[int, Variant], Figures], sizes: tuple[int, ...], variants: tuple[Variant, ...]
) -> list[Row]:
    rows = []
    for variant in variants:
        windows = {n: results[(n, variant)].window.median for n in sizes}
        for n in sizes:
            f = results[(n, variant)]
            ratio = ratio_samples(f.window, f.floor)
            terms = (
                f"write {1000 * f.floor_write.median:.0f} ms + issue {f.floor_issue.median:.2f} s "
                f"+ slowest restart {f.floor_restart.median:.2f} s"
            )
            rows.append(
                _gated(
                    f"revocation window, {n} running cluster(s), {variant.label}: window / floor",
                    f"{ratio.median:.3f}x (window {f.window.median:.2f} s, floor {f.floor.median:.2f} s = {terms})",
                    "≤ 1.05x",
                    ratio.median <= 1.05,
                    [
                        f"window as `provision rotate` prints it: {f.window.text()}",
                        f"floor = secret write + (N - 1)/R + slowest restart: {f.floor.text()}",
                        f"last restart requested after the refresh: {f.issued.text()} "
                        f"(floor's issue term {f.floor_issue.median:.2f} s)",
                        f"physical outage (refresh answered → last restart finished): {f.outage.text()}",
                        f"429 answers during the rotations: {f.window_429} (every rotation exited 0)",
                        *f.window_detail,
                    ],
                    gated=gated("window", variant, n),
                )
            )
        if variant.profile == "realistic":
            # Restarts dominate: linearity is about what the tool adds on top of the floor.
            extra = {n: results[(n, variant)].window.median - results[(n, variant)].floor.median for n in sizes}
            text = ", ".join(f"{n}: {v:+.2f} s" for n, v in extra.items())
            lo, hi = sizes[0], sizes[-1]
            per = {n: v / n for n, v in extra.items()}
            rows.append(
                Row(
                    f"window minus floor by size (what the tool adds), {variant.label}",
                    text,
                    "cost per cluster must not grow",
                    len(sizes) < 2 or per[hi] <= max(per[lo], 0.0),
                    [],
                )
            )
        else:
            rows.append(_linearity(f"window linearity, {variant.label}", windows, sizes))
    return rows


def plan_rows(
    results: dict[tuple[int, Variant], Figures], sizes: tuple[int, ...], variants: tuple[Variant, ...]
) -> list[Row]:
    rows = []
    for variant in (v for v in variants if not v.limit):  # Terraform throttles itself (15 req/s)
        for n in sizes:
            f = results[(n, variant)]
            ratio = ratio_samples(f.plan_ours, f.plan_raw)
            aep = f.plan_aep.median
            rows.append(
                _gated(
                    f"plan, {n} cluster(s), {variant.label}: `provision plan` / raw `terraform plan`",
                    f"{ratio.median:.3f}x (per pair {ratio.low:.3f}-{ratio.high:.3f})",
                    "≤ 1.10x",
                    ratio.median <= 1.10,
                    [
                        f"provision plan {f.plan_ours.text()}; terraform plan {f.plan_raw.text()} (both with one "
                        "stand-in provider process per command: harness.run_terraform)",
                        *(
                            [
                                f"raw terraform plan as a user runs it in a sandbox root (a provider process per "
                                f"instance): {f.plan_launcher.text()}; provision plan / that: "
                                f"{ratio_samples(f.plan_ours, f.plan_launcher).median:.3f}x"
                            ]
                            if f.plan_launcher.values
                            else []
                        ),
                        f"wrapper's extra wall time (median difference): "
                        f"{1000 * (f.plan_ours.median - f.plan_raw.median):.0f} ms",
                        f"IMS token + credentials GET: {1000 * aep:.0f} ms, answered while Terraform plans "
                        "the root on disk (provisioner/operations/plan_ahead.py)",
                        f"429 answers during provision plan: {f.plan_429}",
                        *f.plan_steps,
                    ],
                    gated=gated("plan", variant, n),
                )
            )
        # Terraform's own plan grows with the clusters (the stand-in provider's calls per
        # resource); what must not grow per cluster is what the tool adds to it.
        extra = {n: results[(n, variant)].plan_ours.median - results[(n, variant)].plan_raw.median for n in sizes}
        raw = {n: results[(n, variant)].plan_raw.median for n in sizes}
        lo, hi = sizes[0], sizes[-1]
        rows.append(
            Row(
                f"plan linearity (what the wrapper adds to Terraform's plan), {variant.label}",
                ", ".join(f"{n}: {1000 * v:+.0f} ms" for n, v in extra.items()),
                "cost per cluster must not grow",
                extra[hi] <= max(extra[lo], 0.0) * hi / lo,
                ["raw terraform plan by size: " + ", ".join(f"{n}: {v:.2f} s" for n, v in raw.items())],
            )
        )
        if len(sizes) > 1:
            rows.append(
                _linearity(f"raw terraform plan linearity (the stand-in provider), {variant.label}", raw, sizes)
            )
        if 10 in raw and 200 in raw:
            growth = raw[200] / raw[10]
            rows.append(
                Row(
                    f"stand-in linear: raw `terraform plan` t(200)/t(10), {variant.label}",
                    f"{growth:.1f}x ({raw[10]:.2f} s → {raw[200]:.2f} s)",
                    "≤ 22x",
                    growth <= 22.0,
                    ["bound at 200: the provider's own 15 req/s, 2 requests per cluster's refresh (≥ 25.7 s)"],
                )
            )
    return rows


def verify_rows(
    results: dict[tuple[int, Variant], Figures], sizes: tuple[int, ...], variants: tuple[Variant, ...]
) -> list[Row]:
    from provisioner.reach.probe import DEFAULT_PARALLEL

    if REALISTIC not in variants:
        return []
    rows = []
    for n in sizes:
        f = results[(n, REALISTIC)]
        # `--parallel` probes at a time: the probes' total over the parallelism, or the longest
        # probe when that is more, is what the command cannot beat.
        bound = max(f.verify_probe.median / DEFAULT_PARALLEL, f.verify_longest.median)
        rows.append(
            Row(
                f"verify, {n} running cluster(s), realistic: wall / parallelism bound",
                f"{f.verify_wall.median / bound:.2f}x (wall {f.verify_wall.median:.2f} s; bound {bound:.2f} s = "
                f"max(Σ probes {f.verify_probe.median:.1f} s / {DEFAULT_PARALLEL}, longest "
                f"{f.verify_longest.median:.2f} s))",
                "report (bound: --parallel)",
                None,
                [
                    *f.verify_detail,
                    "the wall includes the command's own start, AEP, the state read and the DLZ's start",
                ],
            )
        )
    walls = {n: results[(n, REALISTIC)].verify_wall.median for n in sizes}
    rows.append(_linearity("verify linearity (whole command), realistic", walls, sizes))
    return rows


def prewindow_rows(
    results: dict[tuple[int, Variant], Figures], sizes: tuple[int, ...], variants: tuple[Variant, ...]
) -> list[Row]:
    if REALISTIC not in variants:
        return []
    rows = []
    for n in sizes:
        f = results[(n, REALISTIC)]
        rows.append(
            Row(
                f"rotation's pre-window time, {n} cluster(s), realistic: command start → refresh",
                f"{f.prewindow.median:.2f} s" if f.prewindow.values else "not measured",
                "report; each fact read once (1 state read, 1 scope listing, 1 AEP GET)",
                None,
                f.prewindow_detail,
            )
        )
    walls = {n: results[(n, REALISTIC)].prewindow.median for n in sizes}
    if all(v == v for v in walls.values()):
        rows.append(_linearity("pre-window linearity, realistic", walls, sizes))
    return rows
