"""`python bench/fanout.py` — N environments on 1 runner (`plan --all-envs -j 2`) vs 4 "runners".

A runner is what a CI matrix gives each job: a fresh checkout, its own HOME (caches), one
`provision plan --env E --summary plan-E.json` process per environment (its share of
`provision envs --json`), then one `provision summary merge`. All runners run at once on this
machine and share one sandbox (the AEP + Databricks "cloud"), so the 4-runner wall time is
*not* what 4 machines would take: the figures that transfer are the CPU time (work) — total,
per runner and per environment — and how the per-environment cost changes with N (the goal:
it does not, i.e. total work is linear in the number of environments).

Writes its section of bench/results.md (between the fanout markers) and exits 0 whatever the
numbers are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import Project, bench_environ, children_cpu, provision_argv

RUNNERS = 4
BEGIN, END = "<!-- fanout:begin -->", "<!-- fanout:end -->"


def checkout(work: Path, name: str, envs: int) -> tuple[Project, dict[str, str]]:
    """A fresh checkout with its own HOME, on the shared sandbox `work/cloud`."""
    project = Project(work / name, clusters=2, envs=envs).write()
    (project.dir / "home").mkdir()
    env = {**bench_environ(), "HOME": str(project.dir / "home"), "PROVISION_SANDBOX_DIR": str(work / "cloud")}
    env.pop("XDG_CACHE_HOME", None)
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return project, env


def one_runner(work: Path, envs: int) -> tuple[float, float]:
    project, env = checkout(work, f"one-{envs}", envs)
    argv = [*provision_argv(), "plan", "--all-envs", "-j", "2", "--sandbox", "--config", str(project.config)]
    cpu, started = children_cpu(), time.perf_counter()
    harness.run_quiet(argv, project.dir, env)
    return time.perf_counter() - started, children_cpu() - cpu


def four_runners(work: Path, envs: int) -> tuple[float, float, float]:
    """(wall of all, CPU of all, wall of the merge)."""
    names = [f"env{j}" for j in range(envs)]
    procs = []
    cpu, started = children_cpu(), time.perf_counter()
    for r in range(RUNNERS):
        project, env = checkout(work, f"runner{r}-{envs}", envs)
        cmd = " ".join(provision_argv())
        script = "".join(
            f"{cmd} plan --env {name} --summary plan-{name}.json --sandbox --config provision.yaml >/dev/null 2>&1\n"
            for name in names[r::RUNNERS]
        )
        procs.append(subprocess.Popen(["bash", "-c", script], cwd=project.dir, env=env, stdin=subprocess.DEVNULL))
    for proc in procs:
        proc.wait()
    wall = time.perf_counter() - started
    summaries = sorted(str(p) for p in work.glob(f"runner*-{envs}/plan-*.json"))
    assert len(summaries) == envs, f"{len(summaries)} summaries for {envs} environments"
    merge_started = time.perf_counter()
    harness.run_quiet(
        [*provision_argv(), "summary", "merge", *summaries, "--out", str(work / f"comment-{envs}.md")],
        work,
        bench_environ(),
    )
    merge = time.perf_counter() - merge_started
    return wall, children_cpu() - cpu, merge


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,24", help="environment counts (default 8,24)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if shutil.which("terraform") is None:
        print("terraform not found", file=sys.stderr)
        return 1
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", tempfile.mkdtemp(prefix="bench-pyc-"))
    info = harness.machine()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        work = Path(tmp)
        warm, env = checkout(work, "warm-up", 1)  # builds the shared provider mirror once, untimed
        harness.run_quiet(
            [*provision_argv(), "plan", "--all-envs", "--sandbox", "--config", str(warm.config)], warm.dir, env
        )
        rows = []
        for n in sizes:
            w1, c1 = one_runner(work, n)
            w4, c4, merge = four_runners(work, n)
            rows.append((n, w1, c1, w4, c4, merge))
            print(f"{n} envs: 1 runner {w1:.1f} s wall / {c1:.1f} s CPU; 4 runners {w4:.1f} s / {c4:.1f} s CPU")
    lines.append(BEGIN)
    lines.append("## Fan-out: N environments on 1 runner vs 4 simulated runners (`python bench/fanout.py`)")
    lines.append("")
    lines.append(
        f"{info['date']}, {info['cpus']} CPUs ({info['cpu model']}), {info['terraform']}, load at start "
        f"{info['load average at start (1/5/15 min)']}. 2 clusters per environment, each environment its "
        "own AEP sandbox and workspace, local backend, every checkout fresh (init included). The 4 runners "
        "share this machine: compare CPU (work), not wall time. One run per figure."
    )
    lines.append("")
    lines.append(
        "| environments | 1 runner `plan --all-envs -j 2`: wall / CPU | 4 runners: wall / CPU (all) | "
        "work per runner (CPU / 4) | CPU per environment, 1 runner / 4 runners | "
        "fan-out overhead per environment (CPU) | `summary merge` wall |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for n, w1, c1, w4, c4, merge in rows:
        lines.append(
            f"| {n} | {w1:.1f} s / {c1:.1f} s | {w4:.1f} s / {c4:.1f} s | {c4 / RUNNERS:.1f} s | "
            f"{c1 / n:.2f} s / {c4 / n:.2f} s | {(c4 - c1) / n:+.2f} s | {merge * 1000:.0f} ms |"
        )
    if len(rows) >= 2:
        (n0, _, c10, _, c40, _), (n1, _, c11, _, c41, _) = rows[0], rows[-1]
        lines.append("")
        lines.append(
            f"Linearity ({n0} → {n1} environments): CPU per environment {c10 / n0:.2f} → {c11 / n1:.2f} s on 1 "
            f"runner, {c40 / n0:.2f} → {c41 / n1:.2f} s on 4 runners (constant per-environment cost = linear "
            "total work)."
        )
    lines.append(END)
    write_section("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def write_section(section: str) -> None:
    results = harness.REPO / "bench" / "results.md"
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
