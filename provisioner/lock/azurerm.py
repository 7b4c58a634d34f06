"""The azurerm backend's lock: a lease on a blob beside the state blob, renewed while held.

Terraform's azurerm backend takes its own state lock as a lease on the state blob itself
(hashicorp/terraform `internal/backend/remote-state/azure/client.go`, `Lock`), so this lock
is a blob of its own, `<key>.dlz-lock`, in the same container. A lease lasts LEASE_SECONDS
unless renewed; the holder renews it from a background thread every third of that, so a
holder that died — however it died — stops renewing and its lease expires: that is how a dead
holder is detected. Who holds it is the blob's metadata; the records (the rotation journal)
are blobs `<key>.dlz-<name>.json` beside it.

Credentials are the backend's: ARM_ACCESS_KEY (the account key) or ARM_SAS_TOKEN, as
Terraform's azurerm backend reads them; Azure AD (`use_azuread_auth`) needs azure-identity.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobLeaseClient, ContainerClient

from provisioner.errors import ConfigError, ProvisionError
from provisioner.lock.holder import Holder
from provisioner.secret import mask

LEASE_SECONDS = 30  # Azure allows 15-60 (or infinite, which a dead holder would keep forever)
LOCK_SUFFIX = ".dlz-lock"


class BlobLeaseLock:
    def __init__(self, container: ContainerClient, key: str, lease_seconds: int = LEASE_SECONDS) -> None:
        self.container = container
        self.key = key
        self.lease_seconds = lease_seconds
        self._blob = container.get_blob_client(key + LOCK_SUFFIX)
        self._lease: BlobLeaseClient | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"lease on blob {self.container.container_name}/{self._blob.blob_name}"

    @property
    def dead_holder(self) -> str:
        return f"a lease nobody renews expires within {self.lease_seconds} s"

    def try_acquire(self, holder: Holder) -> bool:
        try:
            try:
                self._blob.upload_blob(b"", overwrite=False)
            except (ResourceExistsError, HttpResponseError) as exc:
                if getattr(exc, "status_code", 409) not in (409, 412):
                    raise
            lease = BlobLeaseClient(self._blob)
            try:
                lease.acquire(lease_duration=self.lease_seconds)
            except HttpResponseError as exc:
                if exc.status_code == 409:  # LeaseAlreadyPresent
                    return False
                raise
            meta = {k: str(v) for k, v in holder.as_json().items() if v is not None}
            self._blob.set_blob_metadata(meta, lease=lease)
        except HttpResponseError as exc:
            raise ProvisionError(
                f"{self.where}: the environment lock failed: {mask(str(exc).splitlines()[0])}"
            ) from None
        self._lease = lease
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, args=(lease,), daemon=True, name="lock-lease")
        self._renewer.start()
        return True

    def _renew(self, lease: BlobLeaseClient) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            # A failed renewal is tried again at the next tick: the lease outlives two missed ones.
            with contextlib.suppress(HttpResponseError):
                lease.renew()

    def holder(self) -> Holder | None:
        try:
            meta: Mapping[str, str] = self._blob.get_blob_properties().metadata
        except HttpResponseError:
            return None
        return Holder.from_json({k: (None if k == "ci_run" and not v else v) for k, v in meta.items()})

    def release(self) -> None:
        lease, self._lease = self._lease, None
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if lease is not None:
            with contextlib.suppress(HttpResponseError):  # expired already: free either way
                lease.release()

    def close(self) -> None:
        self.release()

    def _record(self, name: str) -> Any:
        return self.container.get_blob_client(f"{self.key}.dlz-{name}.json")

    def read_record(self, name: str) -> dict[str, Any] | None:
        try:
            raw = self._record(name).download_blob().readall()
        except ResourceNotFoundError:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def write_record(self, name: str, doc: Mapping[str, Any]) -> None:
        self._record(name).upload_blob(json.dumps(dict(doc), sort_keys=True).encode(), overwrite=True)

    def delete_record(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._record(name).delete_blob()


def container_for(settings: Mapping[str, Any], environ: Mapping[str, str]) -> ContainerClient:
    """The backend's container with the backend's credentials (no secret leaves this function)."""
    account = str(settings["storage_account_name"])
    url = f"https://{account}.blob.core.windows.net"
    credential: Any
    if environ.get("ARM_ACCESS_KEY"):
        credential = environ["ARM_ACCESS_KEY"]
    elif environ.get("ARM_SAS_TOKEN"):
        credential = None
        url += "?" + environ["ARM_SAS_TOKEN"].lstrip("?")
    else:
        try:
            from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError:
            raise ConfigError(
                "terraform.backend: type azurerm: the environment lock (a lease beside the state blob) needs "
                "ARM_ACCESS_KEY or ARM_SAS_TOKEN, or azure-identity installed for Azure AD"
            ) from None
        credential = DefaultAzureCredential()
    return ContainerClient(url, str(settings["container_name"]), credential=credential)
