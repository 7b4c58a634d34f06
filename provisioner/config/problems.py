"""Every problem in provision.yaml at once, so a file with three mistakes takes one run, not three.

Each check adds what it finds (the key path, what is wrong — the fix) instead of raising; the
load ends with one `ConfigErrors` holding a line per problem, `file:line: key path: …`, sorted
by where the key is in the file (lines from the YAML itself: provisioner.config.yaml_reader).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provisioner.config.keys import Key, dotted
from provisioner.errors import ConfigErrors
from provisioner.secret import mask


@dataclass(frozen=True)
class Problem:
    keys: tuple[Key, ...]
    message: str  # what is wrong — the fix


class Problems:
    """What the checks found so far; `raise_if_any` turns them into one ConfigErrors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._found: list[Problem] = []
        # Key paths that hold a secret: no other check may echo their values.
        self._secret_paths: list[tuple[Key, ...]] = []
        self._secrets: list[Problem] = []

    def add(self, keys: tuple[Key, ...], message: str) -> None:
        self._found.append(Problem(keys, message))

    def add_secret(self, keys: tuple[Key, ...], message: str) -> None:
        """A secret at `keys`: its line is the only one about that key (others could quote the value)."""
        self._secret_paths.append(keys)
        self._secrets.append(Problem(keys, message))
        self.add(keys, message)

    def __len__(self) -> int:
        return len(self._found)

    def raise_if_any(self, lines: Mapping[tuple[Key, ...], int]) -> None:
        """Raise ConfigErrors with one line per problem, in file order, each line once."""
        if not self._found:
            return
        seen: set[str] = set()
        ordered: list[tuple[int, str]] = []
        for problem in self._found:
            if problem not in self._secrets and any(_within(problem.keys, s) for s in self._secret_paths):
                continue  # e.g. a schema message would quote the secret value
            line = _line_of(problem.keys, lines)
            where = dotted(problem.keys) if problem.keys else "(top level)"
            text = mask(f"{self.path}{f':{line}' if line else ''}: {where}: {problem.message}")
            if text not in seen:
                seen.add(text)
                ordered.append((line, text))
        ordered.sort(key=lambda item: item[0])  # stable: problems on one line keep the checks' order
        raise ConfigErrors([text for _, text in ordered])


def _within(keys: tuple[Key, ...], prefix: tuple[Key, ...]) -> bool:
    return keys[: len(prefix)] == prefix


def _line_of(keys: tuple[Key, ...], lines: Mapping[tuple[Key, ...], int]) -> int:
    """The line of the key, or of its nearest ancestor in the file (a missing key: its parent's)."""
    for end in range(len(keys), 0, -1):
        line = lines.get(keys[:end])
        if line is not None:
            return line
    return 0
