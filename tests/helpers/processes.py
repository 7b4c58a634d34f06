"""Running the real CLI while sampling `/proc/<pid>/cmdline` of every descendant (terraform, its
provider plugins, anything they start): argv is world-readable on Linux, so a secret there is a
leak even if it is never printed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.project import Project
from tests.helpers.zygote import STARTED_PROVIDERS, ZYGOTE, Forked, forks


@dataclass
class Sampled:
    result: subprocess.CompletedProcess[str]
    cmdlines: set[tuple[str, ...]]
    samples: int

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def _ppid(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone already
    return int(stat.rsplit(")", 1)[1].split()[1])  # comm may contain spaces and parens


def cmdline(pid: int) -> str | None:
    """A process's command line, its arguments joined by spaces; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        ppid = _ppid(entry.name)
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


class ProcessTree:
    """`root` and every process started under it since, kept up to date by `refresh`, which reads
    the parent of new pids only: rescanning every /proc/<pid>/stat on each sample cost ~3 ms of
    CPU, about as much as the watched command itself. A process stays a member until it exits,
    even if its parent dies first and it is re-parented (a wider net than the parent links of the
    moment)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.members: set[int] = {root}
        self._seen: set[str] = set()

    def refresh(self) -> set[int]:
        listed = {name for name in os.listdir("/proc") if name.isdigit()}
        fresh = listed - self._seen
        self._seen = listed
        self.members &= {int(name) for name in listed} | {self.root}
        parents = {int(name): _ppid(name) for name in fresh}
        grown = True
        while grown:  # a new child of a new child joins once its parent has
            grown = False
            for pid, ppid in list(parents.items()):
                if ppid in self.members:
                    self.members.add(pid)
                    del parents[pid]
                    grown = True
        return self.members


def run_sampled(
    project: Project, *args: str, env: Mapping[str, str] | None = None, sandbox: bool = True, timeout: float = 180
) -> Sampled:
    args = project.cli_args(*args, sandbox=sandbox)
    argv = [sys.executable, "-m", "provisioner.main", *args]
    child_env = dict(env) if env is not None else project.env()
    # Forked like Project.run's commands: the sampler watches the child's descendants (Terraform,
    # its keeper and provider, Azurite), whose command lines are their own either way; the
    # child's own is the zygote's, where a fresh one's would be the argv above, the test's own.
    proc: subprocess.Popen[str] | Forked
    if forks(child_env):
        proc = ZYGOTE.start(args, cwd=project.dir, env=child_env)
    else:
        proc = subprocess.Popen(
            argv,
            cwd=project.dir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    seen: set[tuple[str, ...]] = set()
    samples = 0
    stop = threading.Event()

    tree = ProcessTree(proc.pid)

    def sample() -> None:
        nonlocal samples
        while not stop.is_set():
            for pid in sorted(tree.refresh()):
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if raw:
                    seen.add(tuple(raw.decode("utf-8", "replace").rstrip("\0").split("\0")))
            samples += 1
            stop.wait(0.003)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
    assert proc.returncode is not None
    return Sampled(subprocess.CompletedProcess(argv, proc.returncode, out, err), seen, samples)


def start(project: Project, *args: str, **env: str) -> subprocess.Popen[str]:
    """The CLI on the project's sandbox in the background, stdout and stderr merged (`finish` it)."""
    argv = [sys.executable, "-m", "provisioner.main", *project.cli_args(*args)]
    return subprocess.Popen(
        argv,
        cwd=project.dir,
        env=project.env(**{**STARTED_PROVIDERS, **env}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """A barrier on an observable fact (never a fixed sleep): fail naming it if it never holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)
