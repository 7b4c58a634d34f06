"""Where a plan's time goes: Terraform's own trace timestamps, and the stand-in provider's start-up.

`breakdown()` runs one raw `terraform plan` with TF_LOG=trace and splits the wall time into
provider start-up (process started → handshake), provider shutdown (Close → process exited),
the gRPC calls Terraform makes, and the rest (Terraform itself). `provider_start_row()`
times the stand-in's start to handshake and splits its imports into ours and third-party.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from typing import Any

import harness
from harness import Project, Row

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})")
_PID = re.compile(r"\bpid=(\d+)")
_ID = re.compile(r"\bid=(\d+)")
_CALL = re.compile(r"GRPCProvider\.v6: (\w+)")
# go-plugin's handshake cookie: the provider refuses to start without it.
PLUGIN_ENV = {
    "PLUGIN_PROTOCOL_VERSIONS": "6",
    "TF_PLUGIN_MAGIC_COOKIE": "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
}


def _ts(line: str) -> float | None:
    m = _TS.match(line)
    return datetime.fromisoformat(m.group(1)).timestamp() if m else None


def parse_trace(text: str) -> dict[str, Any]:
    started: dict[str, float] = {}  # pid -> "plugin started"
    handshake: list[float] = []
    shutdown: list[float] = []
    close_at: float | None = None
    last_start: float | None = None
    calls: Counter[str] = Counter()
    first = last = None
    for line in text.splitlines():
        t = _ts(line)
        if t is None:
            continue
        first = first if first is not None else t
        last = t
        if "provider: plugin started" in line and (m := _PID.search(line)):
            started[m.group(1)] = t
            last_start = t
        elif "provider: using plugin" in line and last_start is not None:
            handshake.append(t - last_start)
            last_start = None
        elif (m := _CALL.search(line)) is not None:
            calls[m.group(1)] += 1
            if m.group(1) == "Close":
                close_at = t
        elif "plugin process exited" in line and close_at is not None:
            shutdown.append(t - close_at)
            close_at = None
    return {
        "processes": len(started),
        "handshake": handshake,
        "shutdown": shutdown,
        "calls": calls,
        "span": (last - first) if first is not None and last is not None else 0.0,
    }


def breakdown(project: Project) -> list[str]:
    from provisioner.run.context import fetch_credentials

    log = project.dir / "trace.log"
    log.unlink(missing_ok=True)
    with harness.sandbox_context(project) as ctx:
        env = ctx.config.select(None, False)[0]
        child = dict(ctx.runner(env, fetch_credentials(ctx, env).sas_token).env.values)
        child.update(TF_LOG="trace", TF_LOG_PATH=str(log))
        plan_file = env.root_dir / ".terraform" / "bench-trace.tfplan"
        started = time.perf_counter()
        harness.run_quiet(
            ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_file}"],
            env.root_dir,
            child,
        )
        wall = time.perf_counter() - started
    t = parse_trace(log.read_text(errors="replace"))
    log.unlink(missing_ok=True)  # trace logs hold the SAS token: never keep them
    hs, sd = sum(t["handshake"]), sum(t["shutdown"])
    calls = ", ".join(f"{k} {v}" for k, v in sorted(t["calls"].items(), key=lambda kv: -kv[1])[:5])
    return [
        f"trace of one raw plan ({wall:.2f} s): {t['processes']} provider processes; "
        f"start→handshake {hs:.2f} s total ({_ms_list(t['handshake'])}); "
        f"Close→exit {sd:.2f} s total ({_ms_list(t['shutdown'])}); "
        f"rest (Terraform graph walk + provider calls) {max(0.0, wall - hs - sd):.2f} s",
        f"gRPC calls: {calls}",
    ]


def _ms_list(values: list[float]) -> str:
    return " + ".join(f"{1000 * v:.0f}" for v in values) + " ms" if values else "-"


def provider_start(reps: int = 7) -> list[float]:
    """Seconds from exec to the go-plugin handshake line, as Terraform waits for it."""
    env = {**os.environ, **PLUGIN_ENV}
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner.sandbox.provider"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        out.append(time.perf_counter() - started)
        proc.kill()
        proc.wait()
    return out


def import_split() -> dict[str, float]:
    """Self import time (ms, under -X importtime) of the provider process, by top-level package."""
    env = {**os.environ, **PLUGIN_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "provisioner.sandbox.provider"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.kill()
    _, err = proc.communicate()
    totals: Counter[str] = Counter()
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:") or "self" in parts[0]:
            continue
        try:
            self_us = int(parts[0].split(":")[1])
        except ValueError:
            continue
        totals[parts[2].strip().split(".")[0]] += self_us
    return {k: v / 1000 for k, v in totals.items()}


def provider_start_row() -> Row:
    starts = provider_start()
    split = import_split()
    total = sum(split.values())
    top = sorted(split.items(), key=lambda kv: -kv[1])[:6]
    floor = statistics.median(_python_floor())
    return Row(
        "stand-in provider start (exec → handshake), Terraform starts it ~3x per plan",
        harness.Samples(starts).text("ms"),
        "report",
        None,
        [
            f"interpreter floor `python -c pass`: {1000 * floor:.0f} ms",
            f"imports under -X importtime: {total:.0f} ms, ours (provisioner.*) {split.get('provisioner', 0):.0f} ms; "
            "largest: " + ", ".join(f"{k} {v:.0f}" for k, v in top),
        ],
    )


def _python_floor() -> list[float]:
    return [harness.timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(5)]


if __name__ == "__main__":
    print(provider_start_row())
    sys.exit(0)


# ---- the wrapper's own steps, in a fresh interpreter ----------------------------------------

_STEPS_SCRIPT = r"""
import json, sys, time
t0 = 0.0  # process CPU time since the interpreter started: robust to a loaded machine
marks = []
def mark(name):
    marks.append((name, time.process_time(), time.perf_counter()))
wall0 = time.perf_counter() - (time.time() - float(sys.argv[2]))  # wall clock since the process was exec'd
import provisioner.main
import provisioner.commands.plan
from provisioner.console import Console
from provisioner.run.context import fetch_credentials, open_context, render_env
mark("interpreter + imports (CLI, plan command, workflow, config)")
quiet = Console(open("/dev/null", "w"), open("/dev/null", "w"), color=False)
from provisioner.config.model import load_config
load_config(sys.argv[1], environ={})
mark("load + validate provision.yaml")
with open_context(sys.argv[1], quiet, sandbox=True) as ctx:
    mark("start the sandbox (absent in real mode)")
    env = ctx.config.select(None, False)[0]
    creds = fetch_credentials(ctx, env)
    mark("credentials: IMS + Connectors (imports requests)")
    render_env(ctx, env, creds)
    mark("render (imports jinja2) + compare with disk")
    runner = ctx.runner(env, creds.sas_token, quiet)
    runner.init()
    mark("runner: terraform version (prefetched), init check")
mark("stop the sandbox")
prev, prev_wall = t0, wall0
out = []
for name, t, w in marks:
    out.append([name, t - prev, w - prev_wall])
    prev, prev_wall = t, w
print(json.dumps(out))
"""


def wrapper_steps(project: Project, reps: int = 5, environ: dict[str, str] | None = None) -> list[str]:
    """Median CPU and wall time of each step `provision plan` takes before Terraform runs."""
    runs = []
    for _ in range(reps):
        done = subprocess.run(
            [sys.executable, "-c", _STEPS_SCRIPT, str(project.config), repr(time.time())],
            cwd=project.dir,
            env=environ or harness.bench_environ(),
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = [step[0] for step in runs[0]]
    cpu = [statistics.median(run[i][1] for run in runs) for i in range(len(names))]
    wall = [statistics.median(run[i][2] for run in runs) for i in range(len(names))]
    parts = [f"{n} {1000 * c:.0f}/{1000 * w:.0f}" for n, c, w in zip(names, cpu, wall, strict=True)]
    return [
        "wrapper steps in a fresh interpreter, CPU/wall ms (median; the first includes interpreter "
        "start-up, wall from exec): " + "; ".join(parts) + f"; total {1000 * sum(cpu):.0f}/{1000 * sum(wall):.0f}"
    ]
