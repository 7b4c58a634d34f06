"""Where the test suite's CPU goes, per test file (issue 24: the suite's time).

The suite is CPU-bound (4 workers on 2 cores), so its wall time is about its CPU time over 2,
and nearly all of that CPU is in the processes the tests start (`provision`, Terraform, the
stand-in provider, Azurite), which the worker waits for: RUSAGE_CHILDREN counts them.

    PYTHONPATH=bench python -m pytest -p suite_profile      # writes one JSON line per test
    python bench/suite_profile.py [DIR]                     # the files, most CPU first

Each worker appends to `DIR/<pid>.jsonl` (DIR: $SUITE_PROFILE_DIR, default
/tmp/dlz-suite-profile); remove the directory between runs.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DIR = Path(os.environ.get("SUITE_PROFILE_DIR") or Path(tempfile.gettempdir()) / "dlz-suite-profile")


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    own, children, wall = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    yield
    record = {
        "id": item.nodeid,
        "wall": time.monotonic() - wall,
        "self": _cpu(resource.RUSAGE_SELF) - own,
        "children": _cpu(resource.RUSAGE_CHILDREN) - children,
    }
    DIR.mkdir(parents=True, exist_ok=True)
    with (DIR / f"{os.getpid()}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def main(directory: Path, most: int = 40) -> None:
    files: dict[str, dict[str, Any]] = defaultdict(lambda: {"wall": 0.0, "self": 0.0, "children": 0.0, "tests": 0})
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            row = files[record["id"].split("::")[0]]
            for key in ("wall", "self", "children"):
                row[key] += record[key]
            row["tests"] += 1
    total = sum(row["self"] + row["children"] for row in files.values())
    tests = sum(row["tests"] for row in files.values())
    print(f"{tests} tests, {total:.0f} CPU-s (the workers and every process they waited for)")
    print("| file | tests | CPU-s | share | of it, in child processes |")
    print("|---|---|---|---|---|")
    ranked = sorted(files.items(), key=lambda item: -(item[1]["self"] + item[1]["children"]))
    for name, row in ranked[:most]:
        cpu = row["self"] + row["children"]
        print(f"| {name} | {row['tests']} | {cpu:.1f} | {100 * cpu / total:.1f} % | {row['children']:.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DIR)
