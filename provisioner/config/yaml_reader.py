"""Reading provision.yaml defensively: bounded size, UTF-8, no duplicate keys, no alias bombs,
and every failure one line naming the file (and line, where YAML knows it).

`YamlFile.lines()` maps each key path to its line, so a problem found later in the merged,
validated document is reported at its place in the file. It parses the text a second time
(node tree, not objects), only when there is a problem to place: a valid load pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from provisioner.config.keys import Key
from provisioner.errors import ConfigError, ConfigErrors

MAX_CONFIG_BYTES = 1 << 20  # a real provision.yaml is a few KiB
MAX_YAML_NODES = 200_000  # bounds alias expansion ("billion laughs")


@dataclass(frozen=True)
class YamlFile:
    data: Any
    text: str

    @cached_property
    def lines(self) -> dict[tuple[Key, ...], int]:
        """The 1-based line of every key and list item, by key path (mapping keys as text)."""
        return key_lines(self.text)


def _loader_base() -> Any:
    import yaml  # deferred: keeps `provision --help` fast

    # libyaml's parser when PyYAML has it (parsing is most of a config load), else pure Python;
    # both build the same Python objects through the safe constructor.
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> YamlFile:
    import yaml

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found — pass --config PATH or create provision.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: file is {size} bytes; a provision.yaml must be under {MAX_CONFIG_BYTES} bytes")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start}) — save the file as UTF-8") from None

    base: Any = _loader_base()
    duplicates: list[tuple[int, str]] = []

    class Loader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = key_node.value
                if key in seen:  # every duplicate is reported, after the whole file is read
                    duplicates.append((key_node.start_mark.line + 1, str(key)))
                seen.add(key)
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    try:
        doc = yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if duplicates:
        raise ConfigErrors(
            [f"{path}:{line}: duplicate key '{key}' — each key may appear once" for line, key in sorted(duplicates)]
        )
    _bound_size(path, doc)
    return YamlFile(doc, text)


def key_lines(text: str) -> dict[tuple[Key, ...], int]:
    import yaml

    root = yaml.compose(text, Loader=_loader_base())
    out: dict[tuple[Key, ...], int] = {}
    stack: list[tuple[Any, tuple[Key, ...]]] = [(root, ())] if root is not None else []
    budget = MAX_YAML_NODES  # aliases share nodes: bound the walk as the load is bounded
    while stack and budget > 0:
        node, keys = stack.pop()
        budget -= 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                at = (*keys, str(key_node.value))
                out.setdefault(at, key_node.start_mark.line + 1)
                stack.append((value_node, at))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.setdefault((*keys, i), item.start_mark.line + 1)
                stack.append((item, (*keys, i)))
    return out


def _bound_size(path: Path, doc: Any) -> None:
    """Refuse documents whose aliases expand to more nodes than any real config has."""
    budget = MAX_YAML_NODES
    stack = [doc]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{path}: the YAML expands to more than {MAX_YAML_NODES} values (alias bomb?) — simplify it"
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
