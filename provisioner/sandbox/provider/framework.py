"""What the stand-in adds to the `tf` framework to look like the real provider.

The real databricks provider is built on Terraform's SDKv2; `tf` follows the stricter
plugin-framework rules. Three differences matter to Terraform, and are bridged here:

1. SDKv2 nested blocks (`autoscale { ... }`) are LIST blocks, `timeouts` a SINGLE one; `tf`
   only ships SET blocks -> snapshot.py's `ListNestedBlock` and its kin.
2. SDKv2 attributes may have a `Default` while staying Optional (not Computed), e.g.
   `autotermination_minutes = 60`. The provider then plans a value the config did not
   set, and may return values (server-added `spark_conf` keys) that differ from the plan.
   Terraform allows that only for providers that declare the *legacy type system*, as
   every SDKv2 provider does -> `install_sdkv2_semantics()` fills `DEFAULTS` into the
   proposed state and sets `legacy_type_system` on plan and apply answers.
3. `tf`'s default `upgrade()` warns on every refresh -> `StandInResource.upgrade`.

And one protocol detail: the real provider (SDKv2, terraform-plugin-sdk
`helper/schema/grpc_provider.go` `serverCapabilities()`) answers GetProviderSchema with the
`GetProviderSchemaOptional` server capability. Terraform ≥ 1.6 then serves every later
provider instance of the same command from its process-wide schema cache
(terraform `internal/plugin6/grpc_provider.go` `GetProviderSchema`,
`internal/schemarepo/loadschemas/plugins.go`): one schema call per command instead of one per
provider process. `tf` sets the capability only on GetMetadata, which Terraform does not
consult for this, so the stand-in sets it on the schema answer (built once per process, or
read back from the sandbox's copy of an earlier process's answer: schema_cache.py).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from tf.iface import PlanContext, Resource, State, UpgradeContext
from tf.schema import Schema

from provisioner.sandbox.provider.schema_cache import schema_answer
from provisioner.sandbox.provider.snapshot import ListNestedBlock as ListNestedBlock  # re-exported
from provisioner.secret import mask


class StandInResource(Resource):
    """Base of the stand-in's resources: instantiated by `tf` with the provider."""

    # Optional (non-computed) attributes with an SDKv2 Default: filled in at plan time.
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    @classmethod
    def get_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def blank_state(cls) -> State:
        """Every attribute null and every block empty: Terraform wants complete objects."""
        from provisioner.sandbox.provider.snapshot import SingleNestedBlock

        schema = cls.get_schema()
        return {
            **{a.name: None for a in schema.attributes},
            **{b.type_name: None if isinstance(b, SingleNestedBlock) else [] for b in schema.block_types},
        }

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State:
        """SDKv2 does not tell an unset primitive from its zero value (terraform-plugin-sdk
        diffs flatmaps, where null and "" or 0 or false are one value): an optional attribute
        the configuration leaves unset is no change from a zero value the API reported."""
        if current is None:
            return planned
        for attribute in self.get_schema().attributes:
            name, before = attribute.name, current.get(attribute.name)
            unset = attribute.optional and not attribute.computed and planned.get(name) is None
            if unset and before is not None and before in ("", 0, False):
                planned[name] = before
        return planned

    def upgrade(self, ctx: UpgradeContext, version: int, old: State) -> State:
        # Our schema has one version. Keep known keys only, so a state written by another
        # build (or the real provider) still decodes.
        return {k: old.get(k, v) for k, v in self.blank_state().items()}


R = TypeVar("R")


class _Context:
    def __init__(self, diagnostics: Any) -> None:
        self.diagnostics = diagnostics


# gRPC methods this process served, by name (written out for benchmarks: __main__.py).
RPC_CALLS: Counter[str] = Counter()


def describe_error(exc: Exception) -> str:
    """A failure as a diagnostic's detail, masked. Errors the real provider shows as they are
    (auth) carry no Python type name."""
    return mask(str(exc) if getattr(exc, "verbatim", False) else f"{type(exc).__name__}: {exc}")


def reports_errors(summary: str) -> Callable[[Callable[..., R]], Callable[..., R | None]]:
    """Turn any failure of a resource operation into a Terraform error diagnostic.

    This is the provider's boundary: an exception escaping into gRPC would surface as an
    opaque "plugin error"; a diagnostic shows the Databricks error (masked) to the user.
    """

    def wrap(method: Callable[..., R]) -> Callable[..., R | None]:
        @functools.wraps(method)
        def inner(self: Any, ctx: Any, *args: Any) -> R | None:
            try:
                return method(self, ctx, *args)
            except Exception as exc:
                ctx.diagnostics.add_error(summary, describe_error(exc))
                return None

        return inner

    return wrap


def install_sdkv2_semantics() -> None:
    """Make `tf.runner.run_provider` serve through `SDKv2Servicer` (it looks the class up at call time)."""
    import tf.provider
    from tf.gen import tfplugin_pb2 as pb
    from tf.utils import Diagnostics, read_dynamic_value, to_dynamic_value

    class SDKv2Servicer(tf.provider.ProviderServicer):
        _schema_response: Any = None

        def GetProviderSchema(self, request: Any, context: Any) -> Any:
            if self._schema_response is None:

                def build() -> Any:
                    response = super(SDKv2Servicer, self).GetProviderSchema(request, context)
                    response.server_capabilities.get_provider_schema_optional = True
                    return response

                self._schema_response = schema_answer(build, pb.GetProviderSchema.Response.FromString)
            return self._schema_response

        def PlanResourceChange(self, request: Any, context: Any) -> Any:
            klass = self._get_res_cls(request.type_name)
            if getattr(klass, "NOT_EMULATED", False):
                # tf plans a create without asking the resource: refuse here, once.
                diags = Diagnostics()
                klass(self.app).refuse(_Context(diags))
                return pb.PlanResourceChange.Response(diagnostics=diags.to_pb())
            defaults = getattr(klass, "DEFAULTS", {})
            proposed = read_dynamic_value(request.proposed_new_state)
            if proposed is not None and any(proposed.get(k) is None for k in defaults):
                proposed.update({k: v for k, v in defaults.items() if proposed.get(k) is None})
                request.proposed_new_state.CopyFrom(to_dynamic_value(proposed))
            response = super().PlanResourceChange(request, context)
            response.legacy_type_system = True
            return response

        def ApplyResourceChange(self, request: Any, context: Any) -> Any:
            response = super().ApplyResourceChange(request, context)
            response.legacy_type_system = True
            return response

    tf.provider.ProviderServicer = SDKv2Servicer

    import tf.runner

    class GracefulStop(tf.runner._ShutdownInterceptor):
        """StopProvider (Terraform got Ctrl-C) means "wrap up in-flight calls", as in SDKv2 —
        not "drop them": `tf` stops the gRPC server at once, so an interrupted apply lost the
        cluster it had just created (in the workspace, absent from state). go-plugin's
        Shutdown still ends the server."""

        def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
            RPC_CALLS[handler_call_details.method.rpartition("/")[2]] += 1
            if handler_call_details.method == "/tfplugin6.Provider/StopProvider":
                return continuation(handler_call_details)
            return super().intercept_service(continuation, handler_call_details)

    tf.runner._ShutdownInterceptor = GracefulStop
