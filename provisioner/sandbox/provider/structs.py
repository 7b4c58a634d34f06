"""State ↔ API JSON, as the real provider's `common.DataToStructPointer` / `common.StructToData`
(terraform-provider-databricks `common/reflect_resource.go`) convert them for every SDKv2
resource built from an SDK struct: an attribute is the API field of the same name, a block
with `max_items = 1` (or SINGLE nesting) is an object, any other block a list of objects;
unset values are left out of requests, and a read sets every attribute and block."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tf.iface import State
from tf.schema import NestedBlock, Schema
from tf.types import Unknown

from provisioner.sandbox.provider.snapshot import SingleNestedBlock


def known(value: Any) -> bool:
    """Set in the configuration or state: not null, not unknown, not an empty collection."""
    return value is not None and value is not Unknown and value != [] and value != {}


def _api_object(block: NestedBlock, item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k in block._amap() and known(v)}
    for name, nested in block._bmap().items():
        value = api_value(nested, item.get(name))
        if value is not None:
            out[name] = value
    return out


def api_value(block: NestedBlock, value: Any) -> Any:
    """A block's state as the API has it: an object for single and `max_items = 1` blocks."""
    if not known(value):
        return None
    if isinstance(value, dict):
        return _api_object(block, value)
    items = [_api_object(block, item) for item in value if item is not None]
    return items[0] if block.max_items == 1 else items


def to_api(schema: Schema, state: State, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The request body for a state: configurable attributes and blocks that are set."""
    skipped = frozenset(skip)
    body = {
        a.name: state[a.name]
        for a in schema.attributes
        if a.name not in skipped and (a.optional or a.required) and known(state.get(a.name))
    }
    for block in schema.block_types:
        if block.type_name not in skipped:
            value = api_value(block, state.get(block.type_name))
            if value:
                body[block.type_name] = value
    return body


def _state_object(block: NestedBlock, obj: Any) -> dict[str, Any]:
    obj = obj if isinstance(obj, dict) else {}
    out: dict[str, Any] = {name: obj.get(name) for name in block._amap()}
    for name, nested in block._bmap().items():
        out[name] = state_value(nested, obj.get(name))
    return out


def state_value(block: NestedBlock, value: Any) -> Any:
    """An API value as a block's state, every nested attribute and block present."""
    if isinstance(block, SingleNestedBlock):
        return None if value is None else _state_object(block, value)
    if value is None:
        return []
    return [_state_object(block, item) for item in (value if isinstance(value, list) else [value])]


def from_api(schema: Schema, obj: dict[str, Any], skip: Iterable[str] = ()) -> State:
    """A complete state from an API object (attributes and blocks in `skip` left null/empty)."""
    skipped = frozenset(skip)
    state: State = {a.name: (None if a.name in skipped else obj.get(a.name)) for a in schema.attributes}
    for block in schema.block_types:
        empty: list[Any] | None = None if isinstance(block, SingleNestedBlock) else []
        state[block.type_name] = empty if block.type_name in skipped else state_value(block, obj.get(block.type_name))
    return state
