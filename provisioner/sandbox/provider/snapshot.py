"""The real provider's schema, as the stand-in serves it: every resource and data source.

`real_schema.json` is databricks/databricks v1.99.0's schema extracted from a pinned, hashed
artifact (scripts/extract_provider_schema.py). The stand-in builds every schema it serves from
it, emulated types and the rest alike, so any configuration the real provider's schema
accepts is accepted here and any it refuses is refused (Terraform checks the configuration
against the schema itself). What the snapshot cannot say (ForceNew, defaults) the emulated
resources add on top (`requires_replace` below, `StandInResource.DEFAULTS`).

Nested blocks: SDKv2's `MaxItems: 1` lists and plain lists are LIST blocks, `schema.TypeSet`
of resources SET blocks, and SDKv2's `timeouts` (like plugin-framework single blocks) SINGLE.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tf.gen import tfplugin_pb2 as pb
from tf.schema import Attribute, Block, NestedBlock, NestMode, Schema
from tf.types import Bool, List, Map, Number, Set, String, TfType

SNAPSHOT = Path(__file__).with_name("real_schema.json")
_SCALARS: dict[str, type[TfType]] = {"string": String, "number": Number, "bool": Bool}
_COLLECTIONS: dict[str, type[List] | type[Map]] = {"list": List, "set": Set, "map": Map}


@functools.cache
def _entries() -> dict[str, dict[str, str]]:
    """Each type's schema as its unparsed JSON text, by section.

    The snapshot holds one type per line (scripts/extract_provider_schema.py `layout`): a
    provider process parses only the types it is asked about. Parsing all 1.8 MB costs each
    of the ~3 provider processes of a plan ~20-60 ms; only the schema request needs it all.
    A snapshot in another layout is parsed whole.
    """
    sections: dict[str, dict[str, str]] = {"resources": {}, "data_sources": {}}
    current: dict[str, str] | None = None
    for line in SNAPSHOT.read_text().splitlines():
        if line.startswith(('"resources": {', '"data_sources": {')):
            current = sections[line.split('"')[1]]
        elif line.startswith("}"):
            current = None
        elif current is not None:
            name, _, text = line.partition(": ")
            current[json.loads(name)] = text.rstrip(",")
    if not sections["resources"]:
        whole = json.loads(SNAPSHOT.read_text())
        sections = {k: {n: json.dumps(v) for n, v in whole[k].items()} for k in sections}
    return sections


@functools.cache
def _spec(section: str, type_name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(_entries()[section][type_name])
    return spec


def resource_types() -> list[str]:
    return list(_entries()["resources"])


def data_source_types() -> list[str]:
    return list(_entries()["data_sources"])


def tf_type(spec: Any) -> TfType:
    if isinstance(spec, str):
        return _SCALARS[spec]()
    kind, element = spec
    return _COLLECTIONS[kind](tf_type(element))


def _decode_block(block: NestedBlock, item: Any) -> Any:
    """One element of a nested block as a dict: attributes decoded, nested blocks too."""
    if item is None:
        return None
    attrs, blocks = block._amap(), block._bmap()
    out = {k: (attrs[k].type.decode(v) if v is not None else None) for k, v in item.items() if k in attrs}
    out.update({k: blocks[k].decode(v) for k, v in item.items() if k in blocks})
    return out


def _encode_block(block: NestedBlock, item: Any) -> Any:
    from tf.provider import _encode_state_d

    return _encode_state_d(block._amap(), block._bmap(), item, None)


class ListNestedBlock(NestedBlock):
    """A nested block in LIST nesting mode; its state is a list of dicts (order matters)."""

    def __init__(
        self, type_name: str, block: Block, max_items: int | None = None, min_items: int | None = None
    ) -> None:
        # NestMode has no LIST member; the mode is emitted by to_pb() below instead.
        super().__init__(type_name, NestMode.Set, block, min_items=min_items, max_items=max_items)

    def to_pb(self) -> pb.Schema.NestedBlock:
        return pb.Schema.NestedBlock(
            type_name=self.type_name,
            block=self.block.to_pb(),
            min_items=self.min_items,
            max_items=self.max_items,
            nesting=pb.Schema.NestedBlock.NestingMode.LIST,
        )

    def encode(self, value: Any) -> Any:
        return [_encode_block(self, v) for v in value or []]

    def decode(self, value: Any) -> Any:
        return [_decode_block(self, item) for item in value or []]

    def semantically_equal(self, a_decoded: Any, b_decoded: Any) -> bool:
        return bool(a_decoded == b_decoded)


class SetNestedBlock(ListNestedBlock):
    """A nested block in SET nesting mode: a list of dicts whose order does not matter."""

    def to_pb(self) -> pb.Schema.NestedBlock:
        message = super().to_pb()
        message.nesting = pb.Schema.NestedBlock.NestingMode.SET
        return message

    def semantically_equal(self, a_decoded: Any, b_decoded: Any) -> bool:
        key = functools.partial(json.dumps, sort_keys=True, default=str)
        return sorted(map(key, a_decoded or [])) == sorted(map(key, b_decoded or []))


class SingleNestedBlock(ListNestedBlock):
    """A nested block in SINGLE nesting mode: one dict, or None when absent."""

    def to_pb(self) -> pb.Schema.NestedBlock:
        message = super().to_pb()
        message.nesting = pb.Schema.NestedBlock.NestingMode.SINGLE
        # Terraform wants both 1 (a required block) or both 0 for SINGLE nesting.
        message.min_items = message.max_items = 1 if self.min_items == 1 else 0
        return message

    def encode(self, value: Any) -> Any:
        return None if value is None else _encode_block(self, value)

    def decode(self, value: Any) -> Any:
        return _decode_block(self, value)


_NESTING: dict[str, type[ListNestedBlock]] = {
    "list": ListNestedBlock,
    "set": SetNestedBlock,
    "single": SingleNestedBlock,
}


def _attribute(name: str, spec: dict[str, Any], replace: bool) -> Attribute:
    # The artifact marks 236 nested attributes both required and computed (plugin-framework
    # types, mostly read-only lists of data sources), which Terraform refuses in a schema.
    # Served as optional+computed: whatever the real provider accepts is accepted; only the
    # omission of such an attribute, which it may refuse, is not.
    both = spec["required"] and spec["computed"]
    return Attribute(
        name,
        tf_type(spec["type"]),
        required=spec["required"] and not both,
        optional=spec["optional"] or both,
        computed=spec["computed"],
        sensitive=bool(spec.get("sensitive")),
        requires_replace=replace or None,
    )


def _block(spec: dict[str, Any], path: str, force_new: frozenset[str]) -> Block:
    return Block(
        attributes=[_attribute(n, a, f"{path}{n}" in force_new) for n, a in spec["attributes"].items()],
        block_types=[
            _NESTING[b["nesting"]](
                n, _block(b, f"{path}{n}.", force_new), max_items=b["max_items"], min_items=b["min_items"]
            )
            for n, b in spec["blocks"].items()
        ],
    )


def resource_schema(type_name: str, force_new: Iterable[str] = ()) -> Schema:
    """The real schema of a resource; `force_new` names (dotted paths) of ForceNew attributes."""
    return _cached("resources", type_name, frozenset(force_new))


def data_source_schema(type_name: str) -> Schema:
    return _cached("data_sources", type_name, frozenset())


@functools.cache
def _cached(section: str, type_name: str, force_new: frozenset[str]) -> Schema:
    # `tf` asks a resource class for its schema on many calls (blank states, encodings).
    return _schema(_spec(section, type_name), force_new)


def _schema(spec: dict[str, Any], force_new: frozenset[str]) -> Schema:
    block = _block(spec, "", force_new)
    return Schema(attributes=block.attributes, block_types=block.block_types)
