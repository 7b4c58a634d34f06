"""Interleaved A/B of CPU time (user+sys, from wait4) — robust to a loaded machine — for
`provision --help` and a config load in a fresh process; old tree with cache warm and cold."""

import os
import statistics
import subprocess
import sys
import tempfile

N = int(os.environ.get("N", "20"))
# usage: python bench/startup_ab.py OLD_CHECKOUT NEW_CHECKOUT (each with its own .venv)
trees = {"before": sys.argv[1], "after": sys.argv[2]}


def argv(tree, what):
    py = os.path.join(tree, ".venv/bin/python")
    if what == "help":
        return [py, "-m", "provisioner.main", "--help"]
    return [
        py,
        "-c",
        "from provisioner.config.model import load_config; "
        f"load_config({os.path.join(tree, 'examples/provision.yaml')!r})",
    ]


def cpu(cmd, env, cwd):
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    assert status == 0, cmd
    return (ru.ru_utime + ru.ru_stime) * 1000


warm = tempfile.mkdtemp()
subprocess.run(argv(trees["before"], "load"), env={**os.environ, "XDG_CACHE_HOME": warm}, check=True)
res = {}
for _ in range(N):
    for name, tree in trees.items():
        for what in ("help", "load"):
            for cache in ("warm", "cold") if (name == "before" and what == "load") else ("-",):
                env = dict(os.environ, XDG_CACHE_HOME=warm if cache == "warm" else tempfile.mkdtemp())
                res.setdefault((name, what, cache), []).append(cpu(argv(tree, what), env, tree))
for key, ts in res.items():
    print(f"{key[0]:7} {key[1]:5} cache={key[2]:5} CPU min {min(ts):5.0f} ms  median {statistics.median(ts):5.0f} ms")
