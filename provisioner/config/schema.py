"""Each merged environment against `provision.schema.json`, the one description of a valid one.

Most runs load a valid file, so the check has two paths. `conforms()` interprets the subset
of JSON Schema the shipped schema uses (about a millisecond, no import); only when it says
no — or meets a keyword it does not implement — is `jsonschema` (a slow import) loaded to
decide and to name the failing key. tests/config/test_schema.py checks both agree on the shipped
schema. Nothing is cached on disk: loading a config writes no file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from provisioner.config.problems import Problems

SCHEMA_PATH = Path(__file__).with_name("provision.schema.json")

# Keywords that never constrain an instance.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples", "deprecated"}
)


class Undecided(Exception):
    """The schema uses something `conforms` does not implement: jsonschema decides."""


@cache
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return doc


def validate(problems: Problems, env: str | None, doc: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    """Add a problem (key path, what is expected) for every way `doc` misses the schema."""
    try:
        if conforms(schema(), doc):
            return
    except Undecided:
        pass
    _full_check(problems, env, doc, overlay)


def conforms(node: Any, instance: Any, root: Mapping[str, Any] | None = None) -> bool:
    """Whether `instance` meets schema `node` (draft 2020-12 semantics for the keywords below)."""
    root = node if root is None else root
    if node is True or node == {}:
        return True
    if node is False:
        return False
    if not isinstance(node, Mapping):
        raise Undecided(repr(node))
    for key, value in node.items():
        if key in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(key)
        if check is None:
            raise Undecided(key)
        if not check(node, value, instance, root):
            return False
    return True


def _ref(node: Mapping[str, Any], ref: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise Undecided(f"$ref {ref}")
    target: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            raise Undecided(f"$ref {ref}")
        target = target[part]
    return conforms(target, inst, root)


def _is_type(inst: Any, name: str) -> bool:
    if name == "object":
        return isinstance(inst, dict)
    if name == "array":
        return isinstance(inst, list)
    if name == "string":
        return isinstance(inst, str)
    if name == "boolean":
        return isinstance(inst, bool)
    if name == "null":
        return inst is None
    if name == "number":
        return isinstance(inst, (int, float)) and not isinstance(inst, bool)
    if name == "integer":
        if isinstance(inst, bool):
            return False
        return isinstance(inst, int) or (isinstance(inst, float) and inst.is_integer())
    raise Undecided(f"type {name}")


def _type(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    names = value if isinstance(value, list) else [value]
    return any(_is_type(inst, n) for n in names)


def _object_keys(inst: dict[Any, Any]) -> list[str]:
    keys = list(inst)
    if not all(isinstance(k, str) for k in keys):
        raise Undecided("a non-string key")  # YAML allows them, JSON does not: let jsonschema say
    return keys


def _properties(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    if not isinstance(inst, dict):
        return True
    return all(conforms(sub, inst[k], root) for k, sub in value.items() if k in _object_keys(inst))


def _additional(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    if not isinstance(inst, dict):
        return True
    named = node.get("properties", {})
    patterns = list(node.get("patternProperties", {}))
    extra = [k for k in _object_keys(inst) if k not in named and not any(re.search(p, k) for p in patterns)]
    return all(conforms(value, inst[k], root) for k in extra)


def _pattern_properties(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    if not isinstance(inst, dict):
        return True
    return all(conforms(sub, inst[k], root) for p, sub in value.items() for k in _object_keys(inst) if re.search(p, k))


def _property_names(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    return not isinstance(inst, dict) or all(conforms(value, k, root) for k in _object_keys(inst))


def _required(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    return not isinstance(inst, dict) or all(k in inst for k in value)


def _items(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
    if isinstance(value, list):
        raise Undecided("items as a list")
    return not isinstance(inst, list) or all(conforms(value, item, root) for item in inst)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1 (Python says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if _number(a) and _number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numeric(test: Any) -> Any:
    def check(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
        return not _number(inst) or bool(test(inst, value))

    return check


def _sized(kind: type[str] | type[list[Any]], test: Any) -> Any:
    def check(node: Mapping[str, Any], value: Any, inst: Any, root: Mapping[str, Any]) -> bool:
        return not isinstance(inst, kind) or bool(test(len(inst), value))

    return check


_KEYWORDS: dict[str, Any] = {
    "$ref": _ref,
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "patternProperties": _pattern_properties,
    "propertyNames": _property_names,
    "required": _required,
    "items": _items,
    "pattern": lambda node, value, inst, root: not isinstance(inst, str) or re.search(value, inst) is not None,
    "enum": lambda node, value, inst, root: any(_json_equal(inst, v) for v in value),
    "const": lambda node, value, inst, root: _json_equal(inst, value),
    "not": lambda node, value, inst, root: not conforms(value, inst, root),
    "oneOf": lambda node, value, inst, root: sum(conforms(s, inst, root) for s in value) == 1,
    "anyOf": lambda node, value, inst, root: any(conforms(s, inst, root) for s in value),
    "allOf": lambda node, value, inst, root: all(conforms(s, inst, root) for s in value),
    "minimum": _numeric(lambda x, v: x >= v),
    "maximum": _numeric(lambda x, v: x <= v),
    "exclusiveMinimum": _numeric(lambda x, v: x > v),
    "exclusiveMaximum": _numeric(lambda x, v: x < v),
    "minLength": _sized(str, lambda n, v: n >= v),
    "maxLength": _sized(str, lambda n, v: n <= v),
    "minItems": _sized(list, lambda n, v: n >= v),
    "maxItems": _sized(list, lambda n, v: n <= v),
}


# ---- the full check, with the message ------------------------------------------------------


def _full_check(problems: Problems, env: str | None, doc: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    # No check_schema() here: tests/config/test_model.py checks the shipped schema itself.
    validator = cls(schema(), format_checker=cls.FORMAT_CHECKER)
    # Each error jsonschema finds, narrowed (best_match) to the most telling of its sub-errors: a
    # oneOf/anyOf failure is explained by the branch the value came closest to.
    for found in validator.iter_errors(doc):
        for error in _branch_errors(found):
            _add_error(problems, env, overlay, error)


def _branch_errors(found: Any) -> list[Any]:
    """A oneOf over typed objects (terraform.backend) is explained by the branch its `type` names:
    each of that branch's errors is its own line (an unknown key there is 'unknown key', and a
    secret key is left to the secret check's line), not one vague line about the whole block."""
    from jsonschema.exceptions import best_match

    if found.validator == "oneOf" and isinstance(found.instance, dict):
        for index, branch in enumerate(found.validator_value):
            const = branch.get("properties", {}).get("type", {}).get("const") if isinstance(branch, dict) else None
            if const is not None and const == found.instance.get("type"):
                inner = [e for e in found.context if e.relative_schema_path and e.relative_schema_path[0] == index]
                if inner:
                    return [best_match([e]) for e in inner]
    return [best_match([found])]


def _add_error(problems: Problems, env: str | None, overlay: Mapping[str, Any], error: Any) -> None:
    keys = tuple(error.absolute_path)
    if env and keys and _from_overlay(overlay, keys):
        keys = ("environments", env, *keys)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # One line per unknown key, at the key's own line: each is its own mistake.
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        for extra in sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str):
            problems.add((*keys, str(extra)), f"unknown key — remove it, or use one of: {allowed}")
        return
    problems.add(keys, _explain(error))


def _from_overlay(overlay: Mapping[str, Any], keys: tuple[Any, ...]) -> bool:
    node: Any = overlay
    for key in keys:
        in_mapping = isinstance(node, Mapping) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if in_mapping or in_list:
            node = node[key]
        else:
            return False
    return True


def _explain(error: Any) -> str:
    """Turn a jsonschema error into 'what is wrong — what is expected'."""
    schema_node = error.schema if isinstance(error.schema, dict) else {}
    described = schema_node.get("description")
    validator = error.validator
    instance = error.instance
    shown = json.dumps(instance, ensure_ascii=False, default=str) if not isinstance(instance, (dict, list)) else None
    if shown is not None and len(shown) > 60:
        shown = shown[:57] + '..."'
    if validator == "required":
        return f"{error.message.split(' is a required')[0]} is required here"
    if validator == "type":
        return f"{shown or type(instance).__name__} is the wrong type — expected {error.validator_value}"
    if validator == "pattern":
        expected = described or f"a value matching {error.validator_value}"
        return f"{shown} is not valid — expected {expected}"
    if validator == "enum":
        return f"{shown} is not allowed — expected one of {', '.join(map(str, error.validator_value))}"
    if validator == "const":
        return f"{shown} is not allowed — expected {error.validator_value!r}"
    if validator == "not":
        return "num_workers and autoscale exclude each other — set one"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems", "minLength", "maxLength"):
        return f"{shown or 'value'} is out of range ({validator} {error.validator_value})"
    if validator == "oneOf" and isinstance(instance, dict) and "type" in instance:
        return f"backend type {instance['type']!r} is unknown or its keys are wrong — expected local, azurerm or pg"
    return str(error.message)
