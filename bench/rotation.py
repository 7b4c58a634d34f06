"""The rotation revocation window vs a raw `terraform apply` of the same change.

The window opens when AEP answers the refresh (the old SAS token is revoked at that
instant) and closes when every running cluster is RUNNING on the new configuration.

Tool side: `provision rotate --sandbox --auto-approve` when provisioner/commands/rotate.py
exists (its own printed window is used); otherwise the steps rotate is specified to take
after the refresh, driven directly: `terraform apply` of the new token through our runner,
then `converge_clusters` (restart what still runs on the old token, wait for RUNNING).
Raw side, inline mode: refresh, then `terraform apply -auto-approve` with the same
environment; the floor for a correct rotation is that + one cluster restart
(`PROVISION_SANDBOX_CLUSTER_START_SECONDS`).
Raw side, secret_scope mode (no Terraform in the window since issue 15): the floor itself,
measured — refresh, then one `secrets/put` and a restart of every running cluster at once,
polled until all are RUNNING: put + the slowest restart, nothing else.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from harness import Project, Samples, ratio_samples

_WINDOW_RE = re.compile(r"revocation window[^0-9]*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.IGNORECASE)
APPLY_ARGS = ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=0s"]


def rotate_command_available() -> bool:
    return (harness.REPO / "provisioner" / "commands" / "rotate.py").is_file()


def measure(work: Path, reps: int, applied: Callable[[str, int, str], Project]) -> list[dict[str, Any]]:
    rows = []
    for mode, reps in (("secret_scope", 3), ("inline", 2)):
        project = applied(f"rotate-{mode}", 2, mode)
        rows.append(_measure_mode(project, mode, reps))
    return rows


def _measure_mode(project: Project, mode: str, reps: int) -> dict[str, Any]:
    from provisioner.console import Console
    from provisioner.databricks.converge import converge_clusters
    from provisioner.run.context import fetch_credentials
    from provisioner.terraform import process, read_state

    use_command = rotate_command_available()
    with harness.sandbox_context(project) as ctx:
        env = ctx.config.select(None, False)[0]
        quiet = Console(open("/dev/null", "w"), open("/dev/null", "w"), color=False)  # noqa: SIM115
        client = ctx.aep_client(env)
        cluster_ids = read_state(ctx.runner(env, fetch_credentials(ctx, env).sas_token, quiet), init=False).clusters()
        start_seconds = ctx.target.sandbox.store.cluster_start_seconds

        def tool_direct() -> float:
            creds = client.refresh_credentials()
            opened = time.perf_counter()
            runner = ctx.runner(env, creds.sas_token, quiet)
            done = process.run(
                [runner.binary.path, *APPLY_ARGS],
                cwd=runner.root,
                env=runner.env,
                out=lambda _line: None,
                err=lambda _line: None,
            )
            if done.returncode != 0:
                raise RuntimeError(f"apply failed ({done.returncode}): {done.stderr_tail[-500:]}")
            converge_clusters(ctx.workspace_client(env), cluster_ids, quiet, secret=env.sas.secret, timeout=120)
            return time.perf_counter() - opened

        def tool_command() -> float:
            done = project.provision("rotate", "--auto-approve", capture=True)
            match = _WINDOW_RE.search(done.stdout + done.stderr)
            if done.returncode != 0 or match is None:
                raise RuntimeError(f"rotate: exit {done.returncode}, no window printed: {done.stderr[-300:]}")
            value = float(match.group(1))
            return value / 1000 if match.group(2).lower() == "ms" else value

        def floor_secret_scope() -> float:
            creds = client.refresh_credentials()
            opened = time.perf_counter()
            ws = ctx.workspace_client(env)
            ws.put_secret(env.sas.secret_scope, env.sas.secret_key, creds.sas_token)
            for cid in cluster_ids.values():
                ws.restart_cluster(cid)
            while any(ws.get_cluster(cid).get("state") != "RUNNING" for cid in cluster_ids.values()):
                time.sleep(0.01)
            return time.perf_counter() - opened

        def raw_apply() -> float:
            creds = client.refresh_credentials()
            opened = time.perf_counter()
            child = ctx.runner(env, creds.sas_token, quiet).env.values
            harness.run_terraform(["terraform", *APPLY_ARGS], env.root_dir, child, ok=(0,))
            return time.perf_counter() - opened

        tool = tool_command if use_command else tool_direct
        raw = floor_secret_scope if mode == "secret_scope" else raw_apply
        tool(), raw()  # warm-up: page cache, first restart
        ours, theirs = Samples(), Samples()
        for rep in range(reps):
            for fn, samples in ((tool, ours), (raw, theirs))[:: 1 if rep % 2 == 0 else -1]:
                samples.add(fn())
    ratio = ratio_samples(ours, theirs)
    how = (
        "`provision rotate --sandbox --auto-approve` (window as it prints it)"
        if use_command
        else "rotate's post-refresh steps driven directly (apply through our runner + converge_clusters)"
    )
    if mode == "secret_scope":
        return {
            "figure": "rotation revocation window vs its floor (secret_scope mode, 2 running clusters)",
            "measured": f"{ratio.median:.2f}x (per-pair {ratio.low:.2f}-{ratio.high:.2f})",
            "goal": "≤ 1.05x",
            "met": ratio.median <= 1.05,
            "detail": [
                f"tool: {how}: {ours.text()}",
                f"floor = refresh, one secrets/put, every running cluster restarted at once, polled to RUNNING "
                f"(one start is {start_seconds:.1f} s in the sandbox): {theirs.text()}",
            ],
        }
    floor = theirs.median + start_seconds
    return {
        "figure": f"rotation revocation window vs raw `terraform apply` ({mode} mode, 2 running clusters)",
        "measured": f"{ratio.median:.2f}x (per-pair {ratio.low:.2f}-{ratio.high:.2f})",
        "goal": "≤ 1.05x",
        "met": ratio.median <= 1.05,
        "detail": [
            f"tool: {how}: {ours.text()}",
            f"raw terraform apply -auto-approve after the same refresh: {theirs.text()}",
            f"floor for a correct rotation = raw apply + one cluster start ({start_seconds:.1f} s in the sandbox) "
            f"= {floor:.3f} s → tool / floor = {ours.median / floor:.2f}x",
        ],
    }
