"""The special `spark_version` values of cluster policies, resolved against a workspace's runtimes.

A policy may fix or list `auto:latest`, `auto:latest-ml`, `auto:latest-lts`,
`auto:latest-lts-ml`, `auto:prev-major`, `auto:prev-major-ml`, `auto:prev-lts` or
`auto:prev-lts-ml` instead of a runtime key (Databricks "Compute policy reference", "Special
policy values for Databricks Runtime selection": latest GA, latest LTS, the latest of the
previous major version, the second-latest LTS; `-ml` the Machine Learning runtime of each).
Databricks resolves the value to one of the runtimes the workspace offers (`GET
/api/2.0/clusters/spark-versions`), so a cluster created under such a policy runs, and
`clusters/get` reports, a concrete key such as `17.3.x-scala2.13`.

Which keys count is taken from databricks-sdk-py's own resolver (`mixins/compute.py`
`ClustersExt.select_spark_version`, ported from databricks-sdk-go `spark_version.go`): a
standard runtime is neither `apache-spark-`, `-hls-`, `-gpu-`, `-photon-` nor `-aarch64-`,
not "Beta" by name; LTS is "LTS" in the name (or `-esr-` in the key); versions order by
SemVer of the key. Not settled by any source: which Scala build the special value means
when one release ships two (16.4 LTS has `-scala2.12` and `-scala2.13`). `resolve` returns
every key of the resolved release, in key order; the sandbox's workspace writes the first
into a cluster whose policy fixes the value and accepts any of them in a request, and the
tool accepts any of them — the error names them all when the configured runtime is none.

This module is the tool's home of the rule (provisioner.databricks.policies resolves with it).
The sandbox's workspace keeps its own copy (provisioner/sandbox/runtimes.py: the emulator
imports nothing of the product); tests/sandbox/test_standalone.py holds the two equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SPECIAL_VALUES = (
    "auto:latest",
    "auto:latest-ml",
    "auto:latest-lts",
    "auto:latest-lts-ml",
    "auto:prev-major",
    "auto:prev-major-ml",
    "auto:prev-lts",
    "auto:prev-lts-ml",
)
_VERSION_RE = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+|x)")
_NON_STANDARD = ("apache-spark-", "-hls-", "-gpu-", "-photon-", "-aarch64-")


def is_special(value: Any) -> bool:
    return isinstance(value, str) and value in SPECIAL_VALUES


def resolve(value: str, versions: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every runtime key `value` (a special value) stands for in a workspace offering
    `versions` (`spark-versions` items: `key`, `name`); () when none matches."""
    ml = value.endswith("-ml")
    lts = "-lts" in value
    candidates: dict[tuple[int, int], list[str]] = {}
    for version in versions:
        key, name = str(version.get("key") or ""), str(version.get("name") or "")
        match = _VERSION_RE.match(key)
        if match is None or "Beta" in name or any(part in key for part in _NON_STANDARD):
            continue
        if ("-ml-" in key) != ml:
            continue
        if lts and "LTS" not in name and "-esr-" not in key:
            continue
        minor = match.group("minor")
        release = (int(match.group("major")), 0 if minor == "x" else int(minor))
        candidates.setdefault(release, []).append(key)
    releases = sorted(candidates, reverse=True)
    if not releases:
        return ()
    if value.startswith("auto:latest"):
        chosen: tuple[int, int] | None = releases[0]
    elif lts:  # auto:prev-lts: the second-latest LTS release
        chosen = releases[1] if len(releases) > 1 else None
    else:  # auto:prev-major: the latest release of an older major version
        older = [r for r in releases if r[0] < releases[0][0]]
        chosen = older[0] if older else None
    return tuple(sorted(candidates[chosen])) if chosen is not None else ()


def matches(value: Any, candidate: Any, versions: Sequence[Mapping[str, Any]]) -> bool:
    """`candidate` (a policy's value, maybe special) allows the concrete `value`."""
    if is_special(candidate):
        return value in resolve(str(candidate), versions)
    return bool(value == candidate or str(value).lower() == str(candidate).lower())
