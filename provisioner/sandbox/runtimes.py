"""The workspace's resolution of a cluster policy's special `spark_version` values: the
sandbox's own copy (issue 24: the emulator imports nothing of the product;
tests/sandbox/test_standalone.py holds it equal to the tool's provisioner/databricks/runtimes.py
on a table of cases, so a change to one is seen).

A policy may fix or list `auto:latest`, `auto:latest-ml`, `auto:latest-lts`,
`auto:latest-lts-ml`, `auto:prev-major`, `auto:prev-major-ml`, `auto:prev-lts` or
`auto:prev-lts-ml` instead of a runtime key (Databricks "Compute policy reference", "Special
policy values for Databricks Runtime selection": latest GA, latest LTS, the latest of the
previous major version, the second-latest LTS; `-ml` the Machine Learning runtime of each).
The workspace resolves the value to one of the runtimes it offers (`GET
/api/2.0/clusters/spark-versions`): a cluster created under such a policy runs, and
`clusters/get` reports, a concrete key.

Which keys count follows the SDKs' selection rule (databricks-sdk-go
`service/compute/spark_version.go` `SelectSparkVersion`, which the provider's
`clusters/data_spark_version.go` calls; databricks-sdk-py `mixins/compute.py`
`ClustersExt.select_spark_version`): a standard runtime is neither `apache-spark-`, `-hls-`,
`-gpu-`, `-photon-` nor `-aarch64-`, not "Beta" by name; LTS is "LTS" in the name (or `-esr-`
in the key); releases order by the key's version. No source says which Scala build a value
means when one release ships two, so `resolve` returns every key of the resolved release.
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
    """Every runtime key `value` (a special value) stands for among `versions`
    (`spark-versions` items: `key`, `name`), in key order; () when none matches."""
    ml = value.endswith("-ml")
    lts = "-lts" in value
    releases: dict[tuple[int, int], list[str]] = {}
    for version in versions:
        key, name = str(version.get("key") or ""), str(version.get("name") or "")
        match = _VERSION_RE.match(key)
        if match is None or "Beta" in name or any(part in key for part in _NON_STANDARD):
            continue
        if ("-ml-" in key) != ml or (lts and "LTS" not in name and "-esr-" not in key):
            continue
        minor = match.group("minor")
        releases.setdefault((int(match.group("major")), 0 if minor == "x" else int(minor)), []).append(key)
    newest_first = sorted(releases, reverse=True)
    if not newest_first:
        return ()
    if value.startswith("auto:latest"):
        chosen: tuple[int, int] | None = newest_first[0]
    elif lts:  # auto:prev-lts: the second-latest LTS release
        chosen = newest_first[1] if len(newest_first) > 1 else None
    else:  # auto:prev-major: the latest release of an older major version
        chosen = next((r for r in newest_first if r[0] < newest_first[0][0]), None)
    return tuple(sorted(releases[chosen])) if chosen is not None else ()


def matches(value: Any, candidate: Any, versions: Sequence[Mapping[str, Any]]) -> bool:
    """`candidate` (a policy's value, maybe special) allows the concrete `value`."""
    if is_special(candidate):
        return value in resolve(str(candidate), versions)
    return bool(value == candidate or str(value).lower() == str(candidate).lower())
