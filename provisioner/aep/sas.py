"""Where a DLZ SAS token goes in a cluster's Spark configuration (no imports: render uses it too).

The WASB driver reads a container's SAS token from `fs.azure.sas.<container>.<account>.blob.core.windows.net`;
AEP's on-cluster check lists `wasbs://<container>@<account>.blob.core.windows.net/` with it.
"""

from __future__ import annotations

SAS_CONF_PREFIX = "fs.azure.sas."


def sas_spark_conf_key(container_name: str, storage_account_name: str) -> str:
    return f"{SAS_CONF_PREFIX}{container_name}.{storage_account_name}.blob.core.windows.net"
