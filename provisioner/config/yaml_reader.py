"""Reading provision.yaml defensively: bounded size, UTF-8, no duplicate keys, no alias bombs,
and every failure one line naming the file (and line, where YAML knows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a real provision.yaml is a few KiB
MAX_YAML_NODES = 200_000  # bounds alias expansion ("billion laughs")


def read_yaml(path: Path) -> Any:
    import yaml  # deferred: keeps `provision --help` fast

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

    # libyaml's parser when PyYAML has it (parsing is most of a config load), else pure Python;
    # both build the same Python objects through the safe constructor.
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = key_node.value
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise ConfigError(f"{path}:{line}: duplicate key '{key}' — each key may appear once")
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
    _bound_size(path, doc)
    return doc


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
