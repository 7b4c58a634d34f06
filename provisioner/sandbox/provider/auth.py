"""The stand-in provider's identity: unified auth resolved exactly as the real provider does.

The real provider is built on the Databricks Go SDK, whose rules databricks-sdk-py mirrors
(same attributes and environment variables, same precedence, same "more than one
authorization method configured" conflict unless `auth_type` pins one: provider
`internal/providers/providers_test.go`, `docs/guides/troubleshooting.md`; SDK
`databricks/sdk/config.py`). Resolving with the SDK's own `Config` copies those rules
instead of re-implementing them. Like the real provider, resolution happens lazily, at the
first call that needs the workspace, so a plan with nothing to read still works.

The sandbox's only intervention is the address: a configured workspace host is sent to the
local emulator through PROVISION_SANDBOX_HOSTS (see docs/sandbox.md); an unknown host is an
error, never a real network call.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provisioner.sandbox.provider import MIRRORED_VERSION
from provisioner.sandbox.ratelimit import TokenBucket
from provisioner.secret import Secret, mask

if TYPE_CHECKING:
    from provisioner.sandbox.provider.client import Client

SANDBOX_HOSTS_ENV = "PROVISION_SANDBOX_HOSTS"
PRODUCT = "databricks-tf-provider"
DEFAULT_RATE_LIMIT = 15  # requests per second: the real provider's default `rate_limit`


class ProviderConfigError(Exception):
    """What the real provider reports when it cannot configure its client (shown verbatim)."""

    verbatim = True


def normalize_host(host: str) -> str:
    """`adb-1.2.azuredatabricks.net/` -> `https://adb-1.2.azuredatabricks.net`, as the Go SDK's
    `Config.fixHostIfNeeded` (databricks-sdk-go `config/config.go`) makes of a bare host."""
    host = host.strip().rstrip("/")
    return host if "://" in host else "https://" + host


def resolve_host(host: str) -> str:
    """The local URL standing in for a configured workspace host."""
    host = normalize_host(host)
    raw = os.environ.get(SANDBOX_HOSTS_ENV)
    if not raw:
        raise ProviderConfigError(f"{SANDBOX_HOSTS_ENV} is not set: the stand-in provider only runs in a sandbox")
    mapping = {normalize_host(k): v.rstrip("/") for k, v in json.loads(raw).items()}
    if host not in mapping:
        raise ProviderConfigError(f"{host} is not a sandbox workspace (known: {sorted(mapping)})")
    return str(mapping[host])


def workspace_client(block: Mapping[str, str | bool | int | float]) -> Client:
    """A client for the provider block's attributes plus the environment, as the real provider."""
    from provisioner.sandbox.provider.client import Client, load_sdk

    load_sdk()
    from databricks.sdk.config import Config
    from databricks.sdk.core import ApiClient

    _quiet_sdk_logging()
    names = set()
    for attr in Config.attributes():
        names.add(attr.name)
        # The provider never prints a credential; neither may anything the stand-in logs.
        if attr.sensitive and attr.env and os.environ.get(attr.env):
            Secret(os.environ[attr.env])
    kwargs: dict[str, Any] = {k: v for k, v in block.items() if k in names and v not in (None, "")}
    for name in ("token", "client_secret", "azure_client_secret", "password"):
        if isinstance(kwargs.get(name), str):
            Secret(str(kwargs[name]))
    host = str(kwargs.pop("host", "") or os.environ.get("DATABRICKS_HOST") or "")
    if not host:
        raise ProviderConfigError("cannot configure the provider: host is not set (nor DATABRICKS_HOST)")
    try:
        # The real provider's User-Agent starts `databricks-tf-provider/<version>` (provider
        # `provider/provider.go`: `useragent.WithProduct("databricks-tf-provider", common.Version())`).
        config = Config(host=resolve_host(host), product=PRODUCT, product_version=MIRRORED_VERSION, **kwargs)
    except ValueError as exc:
        raise ProviderConfigError(mask(str(exc))) from None
    api_client = ApiClient(config)
    throttle(api_client, float(config.rate_limit or DEFAULT_RATE_LIMIT))
    return Client(api_client, normalize_host(host))


def _quiet_sdk_logging() -> None:
    """The SDK logs through `logging`; the provider's stderr goes to Terraform's log, and a
    Go provider's SDK logs nothing there unless TF_LOG asks (tflog), so neither does this one."""
    logger = logging.getLogger("databricks.sdk")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.ERROR)


def throttle(api_client: Any, rate: float) -> None:
    """At most `rate` requests per second from this provider process, as the real provider.

    Its Go SDK waits on `rate.NewLimiter(rate_limit, rate_limit)` before every request,
    `rate_limit` (`DATABRICKS_RATE_LIMIT`) defaulting to 15 (databricks-sdk-go
    `httpclient/api_client.go`, `defaultRateLimitPerSeconds`; provider `docs/index.md`).
    databricks-sdk-py reads the attribute but applies no limit, so the stand-in does, on the
    one method every SDK call goes through. Without it the stand-in would send Terraform's
    parallel refreshes faster than the real provider ever does (and trip 429s it never sees).
    """
    bucket = TokenBucket(rate)
    call = api_client.do

    def do(*args: Any, **kwargs: Any) -> Any:
        bucket.wait()
        return call(*args, **kwargs)

    api_client.do = do
