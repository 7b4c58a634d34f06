"""Every resource and data source of the real provider the sandbox does not emulate.

Their schemas are the real ones (snapshot.py), so `terraform validate` and the configuration
checks of `plan` treat them exactly as the real provider would; only when Terraform asks the
provider to act (plan a resource, read a data source, import) does the stand-in answer, with
one error diagnostic naming the type. A user then knows the configuration is right and the
sandbox is the limit — Terraform's own "The provider does not support resource type" would
claim the opposite.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tf.iface import DataSource, ReadDataContext, State
from tf.schema import Schema
from tf.utils import Diagnostics

from provisioner.sandbox.provider.framework import StandInResource
from provisioner.sandbox.provider.snapshot import data_source_schema, resource_schema

PREFIX = "databricks_"


def summary(type_name: str) -> str:
    return f"{type_name} is valid for the real provider but not emulated by the sandbox"


def detail(kind: str) -> str:
    return (
        f"The offline sandbox accepts every {kind} of the real databricks/databricks provider's schema, "
        f'but only emulates some against its workspace (README.md, "Your own Terraform"). '
        "Run without --sandbox against a real workspace, or leave this one out of sandbox runs."
    )


class NotEmulatedResource(StandInResource):
    """Base of the generated classes below: the real schema, and no behaviour."""

    TYPE: ClassVar[str]
    NOT_EMULATED: ClassVar[bool] = True

    @classmethod
    def get_name(cls) -> str:
        return cls.TYPE.removeprefix(PREFIX)

    @classmethod
    def get_schema(cls) -> Schema:
        return resource_schema(cls.TYPE)

    def refuse(self, ctx: Any) -> None:
        ctx.diagnostics.add_error(summary(self.TYPE), detail("resource"))

    def create(self, ctx: Any, planned: State) -> State | None:
        self.refuse(ctx)
        return None

    def read(self, ctx: Any, current: State) -> State | None:
        self.refuse(ctx)
        return current

    def update(self, ctx: Any, current: State, planned: State) -> State | None:
        self.refuse(ctx)
        return None

    def delete(self, ctx: Any, current: State) -> None:
        self.refuse(ctx)

    def import_(self, ctx: Any, id: str) -> State | None:
        self.refuse(ctx)
        return None


class NotEmulatedDataSource(DataSource):
    TYPE: ClassVar[str]

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.TYPE.removeprefix(PREFIX)

    @classmethod
    def get_schema(cls) -> Schema:
        return data_source_schema(cls.TYPE)

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        pass

    def read(self, ctx: ReadDataContext, config: State) -> State | None:
        ctx.diagnostics.add_error(summary(self.TYPE), detail("data source"))
        return None


def _class_name(type_name: str) -> str:
    return "".join(part.title() for part in type_name.split("_"))


def not_emulated_resources(types: list[str]) -> list[type[NotEmulatedResource]]:
    return [type(_class_name(t), (NotEmulatedResource,), {"TYPE": t}) for t in types]


def not_emulated_data_sources(types: list[str]) -> list[type[NotEmulatedDataSource]]:
    return [type("Data" + _class_name(t), (NotEmulatedDataSource,), {"TYPE": t}) for t in types]
