"""databricks-sdk, loaded only as far as this tool uses it.

Importing the `databricks.sdk` package runs its `__init__`, which imports the services of
every Databricks product (about 1.7 s of CPU on this project's machines) before the first
call; every `provision` command and every sandbox provider process paid it. `load()` makes
the package's submodules importable without running that `__init__` (a package-level name
asked for later still runs it, then), and `Workspace` builds the same service objects the
SDK's `WorkspaceClient` builds (databricks-sdk-py `databricks/sdk/__init__.py`:
`ClustersExt(self._api_client)`, `CommandExecutionAPI(...)`, …) for the services we call,
on one `ApiClient` — so authentication, retries and pagination are the SDK's own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from databricks.sdk.config import Config
    from databricks.sdk.mixins.compute import ClustersExt
    from databricks.sdk.service.compute import CommandExecutionAPI
    from databricks.sdk.service.iam import CurrentUserAPI, PermissionsAPI, ServicePrincipalsAPI, UsersAPI
    from databricks.sdk.service.settings import TokensAPI
    from databricks.sdk.service.workspace import SecretsAPI

_lock = threading.Lock()


def load() -> None:
    """Make `databricks.sdk.<module>` importable without the package's `__init__`."""
    with _lock:
        if "databricks.sdk" in sys.modules:
            return
        spec = importlib.util.find_spec("databricks.sdk")
        if spec is None or spec.loader is None:
            raise ImportError("databricks-sdk is not installed (pip install databricks-sdk)")
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def complete(name: str) -> Any:
            if name.startswith("__"):
                return _missing(name)
            if importlib.util.find_spec(f"databricks.sdk.{name}") is not None:
                # `from . import useragent` inside the SDK: a submodule, imported as usual.
                return importlib.import_module(f"databricks.sdk.{name}")
            # A package-level name (`from databricks.sdk import WorkspaceClient`): finish the import.
            with _lock:
                if "__getattr__" in package.__dict__:
                    del package.__dict__["__getattr__"]
                    loader.exec_module(package)
            return package.__dict__[name] if name in package.__dict__ else _missing(name)

        package.__dict__["__getattr__"] = complete
        sys.modules["databricks.sdk"] = package


# What a command's `Workspace` usually builds on, in import order: `databricks.sdk.config`
# first (`Config`); `service.settings` (tokens, for `connect` only) is left to first use.
_MODULES = (
    "databricks.sdk.config",
    "databricks.sdk.core",
    "databricks.sdk.service.compute",
    "databricks.sdk.mixins.compute",
    "databricks.sdk.service.iam",
    "databricks.sdk.service.workspace",
)


def preload() -> None:
    """Import what `Workspace` needs (~0.2 s of CPU). Run on a background thread while the
    SDK's `Config` waits on the host-metadata request, it leaves the critical path."""
    load()
    for name in _MODULES:
        importlib.import_module(name)


def _missing(name: str) -> Any:
    raise AttributeError(f"module 'databricks.sdk' has no attribute {name!r}")


class Workspace:
    """The services of `databricks.sdk.WorkspaceClient` that this tool calls, on one ApiClient.

    Each service is built (and its module imported) on first use: a command that never mints a
    token does not import `service/settings.py` (~50 ms), and so on."""

    def __init__(self, config: Config) -> None:
        load()
        from databricks.sdk.core import ApiClient

        self.config = config
        self.api_client = ApiClient(config)

    # The SDK's service classes carry no annotations on their constructors.

    @cached_property
    def clusters(self) -> ClustersExt:
        from databricks.sdk.mixins.compute import ClustersExt

        return ClustersExt(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def command_execution(self) -> CommandExecutionAPI:
        from databricks.sdk.service.compute import CommandExecutionAPI

        return CommandExecutionAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def current_user(self) -> CurrentUserAPI:
        from databricks.sdk.service.iam import CurrentUserAPI

        return CurrentUserAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def permissions(self) -> PermissionsAPI:
        from databricks.sdk.service.iam import PermissionsAPI

        return PermissionsAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def secrets(self) -> SecretsAPI:
        from databricks.sdk.service.workspace import SecretsAPI

        return SecretsAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def service_principals(self) -> ServicePrincipalsAPI:
        from databricks.sdk.service.iam import ServicePrincipalsAPI

        return ServicePrincipalsAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def users(self) -> UsersAPI:
        from databricks.sdk.service.iam import UsersAPI

        return UsersAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def tokens(self) -> TokensAPI:
        from databricks.sdk.service.settings import TokensAPI

        return TokensAPI(self.api_client)  # type: ignore[no-untyped-call]
