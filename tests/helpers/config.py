"""The facts every test project shares: the repository, the workspace it names, the base
provision.yaml, and the throwaway secrets leak scans look for."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioner.databricks.identity import Identity

REPO = Path(__file__).resolve().parents[2]

# The workspace every test project names: its host, and its key in the sandbox's store.
WORKSPACE_KEY = "adb-1234567890123456.7.azuredatabricks.net"
WORKSPACE_HOST = f"https://{WORKSPACE_KEY}"

ORG = "1234ABCD5678EF90ABCD1234@AdobeOrg"
CLIENT_ID = "0123456789abcdef0123456789abcdef"
SANDBOX = "prod"

BASE_CONFIG: dict[str, Any] = {
    "aep": {"org_id": ORG, "client_id": CLIENT_ID, "sandbox": SANDBOX},
    "databricks": {"host": WORKSPACE_HOST},
    "sas": {"mode": "secret_scope", "secret_scope": "aep-dlz", "secret_key": "dlz-sas-token"},
    "clusters": [
        {
            "name": "aep-ingest",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "autoscale": {"min_workers": 1, "max_workers": 4},
            "autotermination_minutes": 60,
            "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
            "custom_tags": {"team": "data"},
        },
        {
            "name": "aep-explore",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "Standard_DS3_v2",
            "num_workers": 1,
        },
    ],
    "terraform": {"dir": "terraform", "backend": {"type": "local"}},
}

# For unit tests of Terraform's child environment: the identity a run would have resolved.
IDENTITY = Identity(host=WORKSPACE_HOST, auth_type="pat", user_name="u@example.com", display_name="u")

# Distinctive throwaway secrets: leak scans grep for exactly these.
AEP_SECRET = "p8e-SECRETaep0client0secret0XYZ"
DATABRICKS_PAT = "dapi-PATsecret0token0value0QWERTY"


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
