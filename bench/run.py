"""`python bench/run.py` — the performance figures of issue 7, each measured as a ratio in one run.

Every comparison times both sides interleaved on this machine (ABBA order, several
repetitions) and reports the median with the min-max spread. Prints a table and writes
bench/results.md. Benchmarks are not tests: this exits 0 whatever the numbers are (only a
broken setup — e.g. terraform missing — makes it fail).

    python bench/run.py              # everything, ~3-4 minutes on a 2-core sandbox
    python bench/run.py --quick      # fewer repetitions, smaller growth series
    python bench/run.py --only help,render
    python bench/run.py --only window --sizes 200 --out /tmp/r.md   # one scale step, one size
    (scale steps: status, window, scale-plan, verify, prewindow; `scale` runs them all)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import profile_plan
from harness import Project, Row, Samples, interleaved, ratio_samples


@dataclass
class Settings:
    reps: int
    work: Path
    quick: bool
    sizes: tuple[int, ...] | None = None  # scale figures: cluster counts (default scale.SIZES)
    fast: bool = False  # scale figures: the `fast` profile too
    variants: tuple[str, ...] = ()  # scale figures: only these (realistic, limited, fast)


FIGURES: dict[str, Callable[[Settings], list[Row]]] = {}


def figure(name: str) -> Callable[[Callable[[Settings], list[Row]]], Callable[[Settings], list[Row]]]:
    def register(fn: Callable[[Settings], list[Row]]) -> Callable[[Settings], list[Row]]:
        FIGURES[name] = fn
        return fn

    return register


def _verdict(met: bool | None) -> str:
    return "report" if met is None else ("met" if met else "NOT met")


# ---- 1. provision plan vs raw terraform plan ------------------------------------------------


def raw_plan_argv(plan_file: Path) -> list[str]:
    # The same flags provision passes (provisioner/terraform/plan.py).
    return [
        "terraform",
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        f"-out={plan_file}",
        "-lock-timeout=0s",
    ]


def plan_pair(project: Project, reps: int) -> tuple[Samples, Samples]:
    """(provision plan --sandbox, raw terraform plan -out) on the project's one applied root."""
    from provisioner.run.context import fetch_credentials

    with harness.sandbox_context(project) as ctx:
        env = ctx.config.select(None, False)[0]
        creds = fetch_credentials(ctx, env)
        child_env = dict(ctx.runner(env, creds.sas_token).env.values)
        plan_file = env.root_dir / ".terraform" / "bench-raw.tfplan"
        samples = interleaved(
            {
                "provision": lambda: project.provision("plan"),
                "terraform": lambda: harness.run_terraform(raw_plan_argv(plan_file), env.root_dir, child_env),
            },
            reps,
        )
    return samples["provision"], samples["terraform"]


def applied_project(settings: Settings, name: str, clusters: int, mode: str = "secret_scope") -> Project:
    project = Project(settings.work / name, clusters).write(mode)
    project.provision("apply", "--auto-approve")
    return project


@figure("plan")
def plan_vs_terraform(settings: Settings) -> list[Row]:
    project = applied_project(settings, "plan", clusters=2)
    ours, raw = plan_pair(project, settings.reps)
    ratio = ratio_samples(ours, raw)
    steps = profile_plan.wrapper_steps(project, reps=3)
    cpu_ours, cpu_raw = Samples(ours.cpu), Samples(raw.cpu)
    return [
        Row(
            "`provision plan --sandbox` vs raw `terraform plan -out` (2 clusters, applied, init done)",
            f"{ratio.median:.2f}x (per-pair {ratio.low:.2f}-{ratio.high:.2f})",
            "≤ 1.10x",
            ratio.median <= 1.10,
            [
                f"provision plan: {ours.text()}",
                f"terraform plan: {raw.text()}",
                f"wrapper overhead (median difference): {1000 * (ours.median - raw.median):.0f} ms",
                f"CPU (user+sys of the process tree): provision {cpu_ours.text()}, terraform {cpu_raw.text()}, "
                f"ratio {ratio_samples(cpu_ours, cpu_raw).median:.2f}x",
                *steps,
            ],
        )
    ]


# ---- 2. CLI start ---------------------------------------------------------------------------


@figure("help")
def cli_start(settings: Settings) -> list[Row]:
    import subprocess

    env = harness.bench_environ()

    uncached = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"} | {"PYTHONDONTWRITEBYTECODE": "1"}

    def run(*args: str, environ: dict[str, str] = env) -> Callable[[], None]:
        return lambda: subprocess.run(
            [*harness.provision_argv(), *args],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    reps = max(10, 2 * settings.reps)
    samples = interleaved(
        {
            "provision --help": run("--help"),
            "provision credentials --help": run("credentials", "--help"),
            "uncached": run("credentials", "--help", environ=uncached),
            "python -c pass (interpreter floor)": lambda: subprocess.run(
                [sys.executable, "-c", "pass"], env=env, check=True
            ),
        },
        reps,
    )
    floor = samples.pop("python -c pass (interpreter floor)")
    uncached_s = samples.pop("uncached")
    rows = []
    for name, s in samples.items():
        rows.append(
            Row(
                f"`{name}` wall time",
                s.text("ms"),
                "≤ 150 ms",
                s.median <= 0.150,
                [
                    f"interpreter floor (`python -c pass`, same venv): {floor.text('ms')}",
                    f"`provision credentials --help` with PYTHONDONTWRITEBYTECODE=1 (no bytecode cache): "
                    f"{uncached_s.text('ms')}",
                ],
            )
        )
    return rows


# ---- 3. render ------------------------------------------------------------------------------


def render_envs(settings: Settings, clusters: int, envs: int) -> tuple[list[object], object, Path]:
    """Environments built in memory (config validation is not part of this figure)."""
    import dataclasses

    from provisioner.config.model import load_config
    from provisioner.render.root import DlzTarget

    project = Project(settings.work / f"render-{clusters}x{envs}", 1, envs).write()
    config = load_config(project.config, environ={})
    out = []
    for env in config.environments.values():
        base = env.clusters[0]
        specs = tuple(
            dataclasses.replace(
                base,
                name=f"c{i:05d}",
                cluster_name=f"{env.name}-c{i:05d}",
                custom_tags={**base.custom_tags, "index": str(i)},
            )
            for i in range(clusters)
        )
        out.append(dataclasses.replace(env, clusters=specs))
    target = DlzTarget("dlz-databricks-container", "sndbxdtln0123456789abcde")
    return out, target, project.config


def time_render(envs: list[object], target: object, config_path: Path, out_dir: Path) -> tuple[float, float]:
    """(render seconds, render + write seconds) for all environments, written to fresh roots."""
    import dataclasses

    from provisioner.render.root import render_root, write_root

    started = time.perf_counter()
    rendered = [render_root(env, target, config_path) for env in envs]  # type: ignore[arg-type]
    rendered_at = time.perf_counter()
    for r in rendered:
        write_root(dataclasses.replace(r, root=out_dir / r.root.name))
    return rendered_at - started, time.perf_counter() - started


@figure("render")
def render(settings: Settings) -> list[Row]:
    import shutil

    big, target, cfg = render_envs(settings, 500, 10)
    small, _, _ = render_envs(settings, 50, 10)
    time_render(small, target, cfg, settings.work / "render-warm")  # templates compiled, imports done
    reps = max(5, settings.reps)
    r_big, w_big, r_small, w_small = Samples(), Samples(), Samples(), Samples()
    for rep in range(reps):
        for envs, rs, ws in ((big, r_big, w_big), (small, r_small, w_small))[:: 1 if rep % 2 == 0 else -1]:
            out = settings.work / f"render-out-{rep}-{len(envs[0].clusters)}"  # type: ignore[attr-defined]
            r, w = time_render(envs, target, cfg, out)
            rs.add(r)
            ws.add(w)
            shutil.rmtree(out)
    growth = ratio_samples(w_big, w_small)
    return [
        Row(
            "render + write 500 clusters x 10 environments (in-process)",
            w_big.text(),
            "≤ 1 s",
            w_big.median <= 1.0,
            [
                f"render only (in memory): {r_big.text()}",
                f"50 clusters x 10 environments, render + write: {w_small.text()}",
            ],
        ),
        Row(
            "render linearity: time(500 clusters) / time(50 clusters)",
            f"{growth.median:.2f}x for 10x clusters",
            "≤ 11x",
            growth.median <= 11.0,
            [],
        ),
    ]


# ---- 4. parallel plans ----------------------------------------------------------------------


@figure("parallel")
def parallel(settings: Settings) -> list[Row]:
    cores = os.cpu_count() or 1
    project = Project(settings.work / "parallel", clusters=2, envs=8).write()
    project.provision("plan", "--all-envs", "-j", str(cores))  # renders and inits all 8 roots
    reps = 2
    samples = interleaved(
        {
            "-j 1": lambda: project.provision("plan", "--all-envs", "-j", "1"),
            f"-j {cores}": lambda: project.provision("plan", "--all-envs", "-j", str(cores)),
        },
        reps,
        warmup=0,
    )
    seq, par = samples["-j 1"], samples[f"-j {cores}"]
    speedup = ratio_samples(seq, par)
    goal = 0.8 * cores
    return [
        Row(
            f"`plan --all-envs -j {cores}` vs `-j 1`, 8 environments x 2 clusters, {cores} cores",
            f"{speedup.median:.2f}x speedup (per-pair {speedup.low:.2f}-{speedup.high:.2f})",
            f"≥ {goal:.1f}x (0.8 x cores)",
            speedup.median >= goal,
            [
                f"-j 1: {seq.text()}",
                f"-j {cores}: {par.text()}",
                "roots initialised, not applied (each plan creates 4 resources)",
            ],
        )
    ]


# ---- 5. rotation revocation window ----------------------------------------------------------


@figure("rotate")
def rotation(settings: Settings) -> list[Row]:
    import rotation as rot

    return [Row(**row) for row in rot.measure(settings.work, settings.reps, applied_project_factory(settings))]


def applied_project_factory(settings: Settings) -> Callable[[str, int, str], Project]:
    return lambda name, clusters, mode: applied_project(settings, name, clusters, mode)


# ---- 6. credential fetch --------------------------------------------------------------------


@figure("credentials")
def credentials(settings: Settings) -> list[Row]:
    from provisioner.aep import ims

    project = Project(settings.work / "credentials", clusters=1).write()
    reps = max(10, 2 * settings.reps)
    with harness.sandbox_context(project) as ctx:
        env = ctx.config.select(None, False)[0]
        issued = ctx.target.sandbox.aep._tokens  # IMS tokens the emulator has issued, one per token request
        cold, warm = Samples(), Samples()
        ims_cold, ims_warm = 0, 0
        for _ in range(reps):
            ims.clear_cache()
            ctx._clients.clear()  # a new process: no session, no cached token
            before = len(issued)
            cold.add(harness.timed(lambda: ctx.aep_client(env).get_credentials()))
            ims_cold += len(issued) - before
            before = len(issued)
            warm.add(harness.timed(lambda: ctx.aep_client(env).get_credentials()))
            ims_warm += len(issued) - before
    return [
        Row(
            "credential fetch, IMS + Connectors, local emulator: cold / token reused",
            f"cold {cold.text('ms')}; reused {warm.text('ms')}",
            "report; second call must not re-fetch the IMS token",
            ims_warm == 0 and ims_cold == reps,
            [
                f"IMS token requests counted by the emulator: {ims_cold} for {reps} cold fetches, "
                f"{ims_warm} for {reps} fetches with the token reused"
            ],
        )
    ]


# ---- growth ---------------------------------------------------------------------------------


@figure("growth")
def growth(settings: Settings) -> list[Row]:
    sizes = (1, 10, 50) if settings.quick else (1, 10, 100)
    rows = []
    base: float | None = None
    for n in sizes:
        project = applied_project(settings, f"growth-{n}", clusters=n)
        ours, raw = plan_pair(project, 2)
        base = base or raw.median
        where = profile_plan.breakdown(project)
        rows.append(
            Row(
                f"plan growth: {n} cluster(s) in one environment (applied)",
                f"provision {ours.text()}; terraform {raw.text()}",
                "report",
                None,
                [
                    f"ratio provision/terraform: {ratio_samples(ours, raw).median:.2f}x; "
                    f"terraform time vs 1 cluster: {raw.median / base:.2f}x",
                    *where,
                ],
            )
        )
    rows.append(profile_plan.provider_start_row())
    return rows


# ---- 7. scale (issue 16): status, window, plan at 1/10/50 clusters, both profiles ------------


@figure("scale")
def scale_figures(settings: Settings) -> list[Row]:
    import scale

    return scale.measure(settings.work, settings.quick, sizes=settings.sizes, variants=_variants(settings))  # type: ignore[arg-type]


def _variants(settings: Settings) -> tuple[object, ...] | None:
    import scale

    if settings.variants:
        named = {"realistic": scale.REALISTIC, "limited": scale.LIMITED, "fast": scale.FAST}
        return tuple(named[v] for v in settings.variants)
    return (*scale.VARIANTS, scale.FAST) if settings.fast else None


def _scale_step(step: str) -> Callable[[Settings], list[Row]]:
    def measure(settings: Settings) -> list[Row]:
        import scale

        return scale.measure(
            settings.work,
            settings.quick,
            sizes=settings.sizes,
            steps=(step,),
            variants=_variants(settings),  # type: ignore[arg-type]
        )

    return measure


# One step of the scale series alone (`--only window --sizes 200`), to iterate on one figure.
for _step, _name in (
    ("status", "status"),
    ("window", "window"),
    ("plan", "scale-plan"),
    ("verify", "verify"),
    ("prewindow", "prewindow"),
):
    FIGURES[_name] = _scale_step(_step)


# ---- output ---------------------------------------------------------------------------------


def use_bytecode_cache(work: Path) -> str:
    """Measure the tool as installed: pip byte-compiles it, an editable checkout may not.

    With PYTHONDONTWRITEBYTECODE=1 (set on the sandbox machine) every `provision` start and
    every provider start recompiles our modules. The children of this run get a private
    bytecode cache instead (PYTHONPYCACHEPREFIX, deleted with the work dir), warmed up by
    each figure's first, untimed, repetition. Set in os.environ so that raw Terraform's
    provider processes get the same treatment.
    """
    was = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    note = "children use a private bytecode cache (PYTHONPYCACHEPREFIX), as an installed package has"
    return note + (" (PYTHONDONTWRITEBYTECODE=1 was set and is lifted for this run)" if was else "")


def print_table(rows: list[Row]) -> None:
    width = min(70, max(len(r.figure) for r in rows))
    for r in rows:
        print(f"{r.figure[:width]:<{width}}  {_verdict(r.met):<8} {r.measured}  [goal {r.goal}]")
        for d in r.detail:
            print(f"{'':<{width}}    · {d}")


def write_results(path: Path, rows: list[Row], info: dict[str, str], elapsed: float, argv: list[str]) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `python bench/run.py{' ' + ' '.join(argv) if argv else ''}` in {elapsed:.0f} s. "
        "Each comparison times both sides interleaved on the same machine in one run; "
        "numbers are medians with the min-max spread in parentheses. See bench/NOTES.md for what "
        "bounds each figure and what was changed to meet the goals.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Figures",
        "",
        "| figure | measured | goal | verdict |",
        "|---|---|---|---|",
        *[f"| {r.figure} | {r.measured} | {r.goal} | {_verdict(r.met)} |" for r in rows],
        "",
        "## Details",
        "",
    ]
    for r in rows:
        lines.append(f"- **{r.figure}**")
        lines += [f"  - {d}" for d in r.detail]
    # Sections other benchmarks write (e.g. bench/fanout.py, between <!-- name:begin/end --> markers) stay.
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = [m.group(0) for m in re.finditer(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", old, flags=re.S)]
    path.write_text("\n".join([*lines, *("\n" + k for k in kept)]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller growth series")
    parser.add_argument("--only", metavar="A,B", help=f"figures to run, from: {', '.join(FIGURES)}")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results.md",
        help="where to write the Markdown results (default: bench/results.md)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the projects in this directory and reuse those already applied there (kept afterwards)",
    )
    parser.add_argument("--sizes", metavar="N,M", help="scale figures: cluster counts (default 1,10,50,200)")
    parser.add_argument("--fast", action="store_true", help="scale figures: the `fast` profile too")
    parser.add_argument("--variants", metavar="V,W", help="scale figures: only realistic, limited and/or fast")
    args = parser.parse_args(argv)
    # Without --only: every figure once (the scale series covers its steps; no step twice).
    steps = {"status", "window", "scale-plan", "verify", "prewindow"}
    names = args.only.split(",") if args.only else [n for n in FIGURES if n not in steps]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    info = harness.machine()
    started = time.monotonic()
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="dlz-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    info["bytecode"] = use_bytecode_cache(work)
    settings = Settings(
        reps=3 if args.quick and args.reps == 5 else args.reps,
        work=work,
        quick=args.quick,
        sizes=tuple(int(n) for n in args.sizes.split(",")) if args.sizes else None,
        fast=args.fast,
        variants=tuple(args.variants.split(",")) if args.variants else (),
    )
    rows: list[Row] = []
    try:
        for name in names:
            t = time.monotonic()
            print(f"… {name}", file=sys.stderr, flush=True)
            try:
                rows += FIGURES[name](settings)
            except Exception as exc:  # a broken figure is reported, the others still run
                rows.append(Row(name, f"failed: {type(exc).__name__}: {str(exc)[:300]}", "-", False, []))
            print(f"  {name}: {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep and not args.work:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    with contextlib.suppress(OSError):
        info["load average at end (1/5/15 min)"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print_table(rows)
    write_results(args.out, rows, info, elapsed, sys.argv[1:] if argv is None else argv)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
