"""Where a storage account's Blob endpoint is: `https://<account>.blob.core.windows.net`.

A run's `Target` says where storage hosts are served (`Target.blob_routing()`): empty for
Azure itself; the sandbox maps the wildcard host to a local path-style base,
`{"https://*.blob.core.windows.net": "http://127.0.0.1:<port>/blob/*"}`, `*` standing for
the account name. The same mapping reaches child processes that need it as
PROVISION_SANDBOX_BLOB_HOSTS (never through this process's own environment).
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.errors import ProvisionError

BLOB_HOSTS_ENV = "PROVISION_SANDBOX_BLOB_HOSTS"
BLOB_SUFFIX = ".blob.core.windows.net"


def blob_host(account: str) -> str:
    return f"https://{account}{BLOB_SUFFIX}"


def container_url(account: str, container: str, routing: Mapping[str, str] | None = None) -> str:
    """The container's URL, without any credential in it; `routing` from `Target.blob_routing()`."""
    host = blob_host(account)
    if not routing:
        return f"{host}/{container}"
    for pattern, target in routing.items():
        prefix, _, suffix = pattern.partition("*")
        if host.startswith(prefix) and host.endswith(suffix) and len(host) > len(prefix) + len(suffix):
            name = host[len(prefix) : len(host) - len(suffix)]
            return f"{target.replace('*', name).rstrip('/')}/{container}"
    raise ProvisionError(f"{host} is not a storage host of this sandbox")
