"""The sandbox's Data Landing Zone: Azure Blob semantics on Azurite, or the built-in oracle.

Product code builds `https://<account>.blob.core.windows.net/<container>` and the sandbox
"hosts file" (`PROVISION_SANDBOX_BLOB_HOSTS`, see provisioner/dlz_reach/endpoint.py) sends
it to `<sandbox>/blob/<account>/<container>`, answered here by one of two backends:

- `AzuriteDlz`: a reverse proxy to Azurite's path-style URL. Azurite starts on the first
  request (node takes seconds to start: commands that never touch the DLZ never pay), and
  before every request the store's landing zones are replayed into it — container, and the
  *current* stored access policy only — so a refresh made by another process is honoured
  at once. Azurite 3.37 reads a policy-bound SAS's permissions from the policy alone
  (`BlobSASAuthenticator.validate`: `values.permissions = accessPolicy.permission`, a 500
  when the policy has none), so the policy carries `racwdlm` too; on Azure they sit in the token.
- `OracleDlz` (no Node): answers List Blobs from the store, accepting exactly AEP's current,
  unexpired token, with Azure's error codes and XML bodies.

Both also run the workspace emulator's on-cluster probe (`probe`), returning the first line
of the Java error the WASB driver would raise, or None when the listing works.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from html import escape  # not xml.sax.saxutils: it imports urllib.request and http.client
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

from provisioner.sandbox.azurite import AZURITE_VERSION, AzuriteError, AzuriteProcess
from provisioner.sandbox.files import mask_sas
from provisioner.sandbox.store import SAS_PERMISSIONS, SandboxStore, policy_window, sas_fields
from provisioner.sandbox.wire import Request, Response

BLOB_PREFIX = "/blob/"

# What the shaded WASB driver on a Databricks runtime raises (hadoop-azure's AzureException
# wrapping the Azure Storage SDK's StorageException).
AZURE_EXCEPTION = "shaded.databricks.org.apache.hadoop.fs.azure.AzureException"
STORAGE_EXCEPTION = "hadoop_azure_shaded.com.microsoft.azure.storage.StorageException"
AUTH_FAILED = (
    "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
    "correctly including the signature."
)
# 503 ServerBusy's message: learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
SERVER_BUSY = "The server is currently unable to receive requests. Please retry your request."
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


def no_credentials_error(account: str, container: str) -> str:
    """The WASB driver's words when the Spark config holds no SAS for the container (sic: 'anoynomous')."""
    return (
        f"{AZURE_EXCEPTION}: Container {container} in account {account}.blob.core.windows.net not found, "
        "and we can't create it using anoynomous credentials, and no credentials found for them in the configuration."
    )


def storage_error(message: str) -> str:
    first = (message.strip().splitlines() or ["(no message)"])[0]
    return mask_sas(f"{AZURE_EXCEPTION}: {STORAGE_EXCEPTION}: {first}")


class DlzBackend(Protocol):
    name: str

    def describe(self) -> str: ...

    def warm(self) -> None: ...

    def forward(self, request: Request) -> Response: ...

    def probe(self, account: str, container: str, sas: str | None) -> str | None: ...

    def close(self) -> None: ...


def _split(path: str) -> tuple[str, str]:
    account, _, rest = path[len(BLOB_PREFIX) :].partition("/")
    return account, rest.split("/", 1)[0]


# ---- the oracle ---------------------------------------------------------------------------


def still_propagating(
    store: SandboxStore, account: str, container: str, query: Mapping[str, str], seconds: float
) -> bool:
    """The request carries the current token, issued less than `seconds` ago: its stored access
    policy has not taken effect yet ("may take up to 30 seconds", Azure REST Set Container ACL),
    so Azure answers 403 `AuthenticationFailed` as for a revoked one (profile.py's knob)."""
    if seconds <= 0 or not query.get("sig"):
        return False
    for record in store.dlz_records():
        same = record["storageAccountName"] == account and record["containerName"] == container
        if same and sas_fields(record["SASToken"]).get("si") == query.get("si"):
            return time.time() * 1000 - int(record["issued_at"]) < seconds * 1000
    return False


class OracleDlz:
    name = "oracle"

    def __init__(self, store: SandboxStore, propagation_seconds: float = 0.0) -> None:
        self._store = store
        self._propagation = propagation_seconds

    def describe(self) -> str:
        return (
            "the built-in DLZ oracle (install Node.js and `npm install azurite@"
            f"{AZURITE_VERSION}` for real Azure Blob semantics on Azurite)"
        )

    def _check(self, account: str, container: str, query: dict[str, str]) -> tuple[int, str, str] | None:
        records = [r for r in self._store.dlz_records() if r["storageAccountName"] == account]
        record = next((r for r in records if r["containerName"] == container), None)
        if record is None:
            if records:
                return 404, "ContainerNotFound", "The specified container does not exist."
            return 404, "ResourceNotFound", "The specified resource does not exist."
        if not query.get("sig"):
            # Anonymous access to a private container: Azure says "not found", not "forbidden".
            return 404, "ResourceNotFound", "The specified resource does not exist."
        current = sas_fields(record["SASToken"])
        if any(query.get(k) != current.get(k) for k in ("sv", "si", "sr", "sig")):
            return 403, "AuthenticationFailed", AUTH_FAILED
        if date.fromisoformat(record["expiryDate"]) < datetime.now(UTC).date():
            return 403, "AuthenticationFailed", AUTH_FAILED
        return None

    def warm(self) -> None:
        return None

    def forward(self, request: Request) -> Response:
        account, container = _split(request.path)
        query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        if request.method != "GET" or query.get("comp") != "list" or query.get("restype") != "container":
            return _xml_error(400, "UnsupportedOperation", "The sandbox's DLZ oracle answers only List Blobs.")
        problem = self._check(account, container, query)
        if problem is None and still_propagating(self._store, account, container, query, self._propagation):
            problem = 403, "AuthenticationFailed", AUTH_FAILED
        if problem is not None:
            return _xml_error(*problem)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{escape(account)}.blob.core.windows.net/" '
            f'ContainerName="{escape(container)}"><Blobs /><NextMarker /></EnumerationResults>'
        )
        return Response(200, body.encode(), {"Content-Type": "application/xml", "x-ms-version": "2020-10-02"})

    def probe(self, account: str, container: str, sas: str | None) -> str | None:
        if sas is None:
            return no_credentials_error(account, container)
        problem = self._check(account, container, dict(parse_qsl(sas, keep_blank_values=True)))
        return None if problem is None else storage_error(problem[2])

    def close(self) -> None:
        return None


def _xml_error(status: int, code: str, message: str) -> Response:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}\nRequestId:{uuid.uuid4()}\nTime:{stamp}</Message></Error>"
    )
    return Response(status, body.encode(), {"Content-Type": "application/xml", "x-ms-error-code": code})


# ---- Azurite --------------------------------------------------------------------------------


class AzuriteDlz:
    name = "azurite"

    def __init__(self, store: SandboxStore, executable: Path, propagation_seconds: float = 0.0) -> None:
        self._store = store
        self._propagation = propagation_seconds
        self._process = AzuriteProcess(executable)
        self._lock = threading.Lock()
        self._accounts: dict[str, str] = {}
        self._applied: dict[tuple[str, str], tuple[Any, ...]] = {}

    def describe(self) -> str:
        return f"Azurite ({self._process.executable})"

    def warm(self) -> None:
        """Start Azurite in the background now: a command that will probe at its end overlaps the start-up."""

        def start() -> None:
            # Only once a landing zone exists: a new account later would mean a restart.
            with contextlib.suppress(Exception):  # the request that needs it reports any failure
                if self._store.dlz_records():
                    self.ensure()

        threading.Thread(target=start, name="azurite-warm", daemon=True).start()

    def ensure(self) -> str:
        """Azurite running with every account, each container on its current policy; its base URL."""
        records = [r for r in self._store.dlz_records() if r.get("policyId") and r.get("accountKey")]
        with self._lock:
            wanted = {r["storageAccountName"]: r["accountKey"] for r in records}
            if not self._process.running or any(self._accounts.get(a) != k for a, k in wanted.items()):
                accounts = {**self._accounts, **wanted}
                self._process.start(accounts)
                self._accounts, self._applied = accounts, {}
            for record in records:
                where = (record["storageAccountName"], record["containerName"])
                policy = (record["policyId"], record["expiryDate"], record["issued_at"])
                if self._applied.get(where) != policy:
                    self._apply(record)
                    self._applied[where] = policy
        return self._process.base_url

    def _apply(self, record: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import AccessPolicy, BlobServiceClient

        account = record["storageAccountName"]
        service = BlobServiceClient(
            f"{self._process.base_url}/{account}",
            credential={"account_name": account, "account_key": record["accountKey"]},
            retry_total=0,
        )
        container = service.get_container_client(record["containerName"])
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        start, expiry = policy_window(record)
        # Setting the policies replaces them all: the previous policy, and every SAS bound to it, is gone.
        policy = AccessPolicy(permission=SAS_PERMISSIONS, start=start, expiry=expiry)
        container.set_container_access_policy({record["policyId"]: policy})

    def forward(self, request: Request) -> Response:
        try:
            self.ensure()
        except AzuriteError as exc:
            return _xml_error(503, "ServerBusy", f"{SERVER_BUSY} (sandbox: {exc})")
        account, container = _split(request.path)
        query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        if still_propagating(self._store, account, container, query, self._propagation):
            return _xml_error(403, "AuthenticationFailed", AUTH_FAILED)
        target = request.path[len(BLOB_PREFIX) - 1 :] + (f"?{request.raw_query}" if request.raw_query else "")
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
        import http.client  # here: a sandbox that never proxies to Azurite never needs it

        conn = http.client.HTTPConnection("127.0.0.1", self._process.port, timeout=60)
        try:
            conn.request(request.method, target, body=request.body or None, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            out = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
            return Response(answer.status, body, out)
        finally:
            conn.close()

    def probe(self, account: str, container: str, sas: str | None) -> str | None:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.storage.blob import ContainerClient

        if sas is None:
            return no_credentials_error(account, container)
        try:
            base = self.ensure()
        except AzuriteError as exc:  # no storage service: as `forward` answers, 503 ServerBusy
            return storage_error(f"{SERVER_BUSY} (sandbox: {exc})")
        client = ContainerClient.from_container_url(f"{base}/{account}/{container}", credential=sas, retry_total=0)
        try:
            next(iter(client.list_blobs(results_per_page=1).by_page()), None)
        except HttpResponseError as exc:
            return storage_error(str(exc))
        except AzureError as exc:
            return mask_sas(f"{AZURE_EXCEPTION}: java.io.IOException: {type(exc).__name__}")
        finally:
            client.close()
        return None

    def close(self) -> None:
        self._process.stop()
