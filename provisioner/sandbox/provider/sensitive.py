"""The real provider's sensitive provider-block attributes (no imports: the schema script reads it too).

Source: terraform-provider-databricks providerSchema() sets `Sensitive: attr.Sensitive` over
databricks-sdk-go config.ConfigAttributes, whose struct tags mark `auth:"...,sensitive"`.
"""

from __future__ import annotations

SENSITIVE_PROVIDER_ATTRIBUTES = (
    "token",
    "password",
    "client_secret",
    "azure_client_secret",
    "google_credentials",
    "metadata_service_url",
)
