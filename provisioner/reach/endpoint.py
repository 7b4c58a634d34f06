"""Where a storage account's Blob endpoint is: `https://<account>.blob.core.windows.net`.

The sandbox's hosts file for storage (`PROVISION_SANDBOX_BLOB_HOSTS`, set only for sandbox
runs, like `PROVISION_SANDBOX_HOSTS` for workspaces) maps the wildcard host to a local
path-style base: `{"https://*.blob.core.windows.net": "http://127.0.0.1:<port>/blob/*"}`,
`*` standing for the account name. Unset (real mode) it is the identity.
"""

from __future__ import annotations

import json
import os

from provisioner.errors import ProvisionError

BLOB_HOSTS_ENV = "PROVISION_SANDBOX_BLOB_HOSTS"
BLOB_SUFFIX = ".blob.core.windows.net"


def blob_host(account: str) -> str:
    return f"https://{account}{BLOB_SUFFIX}"


def container_url(account: str, container: str) -> str:
    """The container's URL, without any credential in it."""
    host = blob_host(account)
    raw = os.environ.get(BLOB_HOSTS_ENV)
    if not raw:
        return f"{host}/{container}"
    for pattern, target in json.loads(raw).items():
        prefix, _, suffix = pattern.partition("*")
        if host.startswith(prefix) and host.endswith(suffix) and len(host) > len(prefix) + len(suffix):
            name = host[len(prefix) : len(host) - len(suffix)]
            return f"{target.replace('*', name).rstrip('/')}/{container}"
    raise ProvisionError(f"{host} is not a storage host of this sandbox")
