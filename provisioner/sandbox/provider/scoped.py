"""What the stand-in's secret resources share with each other, as the real provider's do.

terraform-provider-databricks `secrets/resource_secret.go` and `secrets/resource_secret_acl.go`:
every configurable attribute forces a new resource (there is no update); the id of a resource
inside a scope is the pair `<scope>|||<name>` (`common.NewPairSeparatedID(…, "|||")`); a read
that finds the object (or its whole scope) gone removes it from state; a delete of something
already gone succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from tf.iface import State, UpdateContext

from provisioner.sandbox.provider.client import ApiError
from provisioner.sandbox.provider.framework import StandInResource

ID_SEPARATOR = "|||"
T = TypeVar("T")


class ReplacedOnChange(StandInResource):
    """A resource whose every configurable attribute forces replacement."""

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return planned  # unreachable: every configurable attribute forces replacement


class InScope(ReplacedOnChange):
    """A resource inside a secret scope, named within it by `NAME` (`key`, `principal`)."""

    NAME: ClassVar[str]

    @staticmethod
    def pair_id(scope: str, name: str) -> str:
        return f"{scope}{ID_SEPARATOR}{name}"


def missing_is_none(call: Callable[[], T]) -> T | None:
    """A read: the object (or its scope) is gone → None, and Terraform drops it from state."""
    try:
        return call()
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


def missing_is_done(call: Callable[[], object]) -> None:
    """A delete: already gone is done."""
    try:
        call()
    except ApiError as exc:
        if not exc.not_found:
            raise
