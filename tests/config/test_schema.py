"""The fast schema check (config_schema.conforms) agrees with jsonschema on the shipped schema.

load_config decides most files without importing jsonschema; these tests are what makes that
safe: every keyword the schema uses is implemented, and over valid documents and thousands of
mutations of them the two validators give the same answer.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provisioner.config.schema import _ANNOTATIONS, _KEYWORDS, Undecided, conforms, schema
from tests.helpers.config import BASE_CONFIG

EXAMPLE = Path(__file__).parents[2] / "examples" / "provision.yaml"

PROBES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    10001,
    "",
    "x",
    "Not Valid",
    "prod",
    "https://example.com",
    "a" * 300,
    [],
    ["x"],
    [{}],
    {},
    {"x": 1},
    {"min_workers": 1, "max_workers": 2},
    {"type": "local"},
    {"type": "pg"},
    {"type": "azurerm", "storage_account_name": "abc", "container_name": "tfstate"},
    dt.date(2024, 1, 1),
]


def _valid_documents() -> list[dict[str, Any]]:
    docs = [copy.deepcopy(BASE_CONFIG)]
    raw = yaml.safe_load(EXAMPLE.read_text())
    base = {k: v for k, v in raw.items() if k != "environments"}
    from provisioner.config.model import _deep_merge

    docs += [_deep_merge(base, overlay or {}) for overlay in (raw.get("environments") or {}).values()]
    for backend in PROBES[-4:-1]:
        doc = copy.deepcopy(BASE_CONFIG)
        doc["terraform"]["backend"] = copy.deepcopy(backend)
        docs.append(doc)
    return docs


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*at, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def _mutations(doc: dict[str, Any], under: tuple[Any, ...] = ()) -> Iterator[Any]:
    for path in _paths(doc):
        if path[: len(under)] != under:
            continue
        for probe in PROBES:
            yield _set(doc, path, copy.deepcopy(probe))
        if path:
            yield _delete(doc, path)
        node = doc
        for key in path:
            node = node[key]
        if isinstance(node, dict):
            yield _set(doc, path, {**node, "unknown_key": 1})
            yield _set(doc, path, {**node, 7: "a non-string key"})


@cache
def _validator() -> Any:
    cls = jsonschema.validators.validator_for(schema())
    return cls(schema(), format_checker=cls.FORMAT_CHECKER)


def _jsonschema_says(doc: Any) -> bool:
    return bool(_validator().is_valid(doc))


def _fast_says(doc: Any) -> bool | None:
    try:
        return conforms(schema(), doc)
    except Undecided:
        return None


def test_every_keyword_of_the_shipped_schema_is_implemented() -> None:
    unknown: set[str] = set()

    def walk(node: Any, in_names: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not in_names and key not in _KEYWORDS and key not in _ANNOTATIONS:
                    unknown.add(key)
                walk(value, in_names=not in_names and key in ("properties", "$defs", "patternProperties"))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema())
    assert not unknown, f"config_schema.conforms does not implement {sorted(unknown)}"


@pytest.mark.parametrize("doc", _valid_documents(), ids=lambda d: str(d.get("terraform", {}).get("backend")))
def test_valid_documents_are_decided_by_the_fast_path(doc: dict[str, Any]) -> None:
    assert _jsonschema_says(doc) is True
    assert _fast_says(doc) is True


def test_the_fast_path_agrees_with_jsonschema_on_every_single_mutation() -> None:
    decided = 0
    docs = _valid_documents()
    # The backend variants differ from the first document only under terraform.backend.
    for i, base in enumerate(docs):
        for doc in _mutations(base, () if i < len(docs) - 3 else ("terraform", "backend")):
            fast = _fast_says(doc)
            if fast is None:
                continue  # load_config hands these to jsonschema
            decided += 1
            assert fast == _jsonschema_says(doc), yaml.safe_dump(doc, sort_keys=False)[:2000]
    assert decided > 1000


def test_the_fast_path_agrees_with_jsonschema_on_random_double_mutations() -> None:
    rng = random.Random(13)
    bases = _valid_documents()
    for _ in range(1500):
        doc: Any = rng.choice(bases)
        for _ in range(2):
            paths = list(_paths(doc))
            doc = _set(doc, rng.choice(paths), copy.deepcopy(rng.choice(PROBES)))
        fast = _fast_says(doc)
        if fast is not None:
            assert fast == _jsonschema_says(doc), repr(doc)[:2000]


def test_json_equality_is_not_pythons() -> None:
    assert conforms({"const": 1}, True) is False
    assert conforms({"enum": [True]}, 1) is False
    assert conforms({"const": 1}, 1.0) is True
    assert conforms({"type": "integer"}, 2.0) is True
    assert conforms({"type": "integer"}, True) is False
