"""AEP Connectors API: the Data Landing Zone credentials for Databricks, and their refresh."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import requests

from provisioner.aep.http import error_detail, json_body, send
from provisioner.aep.sas import sas_spark_conf_key
from provisioner.errors import CredentialsError
from provisioner.secret import Secret, mask_sas

CREDENTIAL_TYPE = "dlz_databricks_source"
PATH = "/data/foundation/connectors/landingzone/credentials"


@dataclass(frozen=True)
class AepContext:
    """Everything AEP's gateway wants on every call."""

    platform_url: str
    access_token: Secret
    client_id: str
    org_id: str
    sandbox: str

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.access_token.reveal()}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org_id,
            "x-sandbox-name": self.sandbox,
            "Content-Type": "application/json",
        }


@dataclass(frozen=True)
class DlzCredentials:
    """The DLZ container a Databricks cluster writes to, and the SAS token that opens it."""

    container_name: str
    storage_account_name: str
    sas_token: Secret
    expiry_date: dt.date

    @property
    def spark_conf_key(self) -> str:
        return sas_spark_conf_key(self.container_name, self.storage_account_name)

    def days_left(self, today: dt.date | None = None) -> int:
        return (self.expiry_date - (today or dt.date.today())).days

    def masked_token(self) -> str:
        return mask_sas(self.sas_token.reveal())

    def as_json(self) -> dict[str, str | int]:
        """Where the DLZ is and when the token expires, as `credentials` and `status --json` show
        it — never the token."""
        return {
            "containerName": self.container_name,
            "storageAccountName": self.storage_account_name,
            "sparkConfKey": self.spark_conf_key,
            "expiryDate": self.expiry_date.isoformat(),
            "daysLeft": self.days_left(),
        }

    def __repr__(self) -> str:
        return (
            f"DlzCredentials(container_name={self.container_name!r}, "
            f"storage_account_name={self.storage_account_name!r}, sas_token='{self.masked_token()}', "
            f"expiry_date={self.expiry_date.isoformat()!r})"
        )


def get_credentials(session: requests.Session, ctx: AepContext) -> DlzCredentials:
    return _call(session, ctx, "GET", refresh=False)


def refresh_credentials(session: requests.Session, ctx: AepContext) -> DlzCredentials:
    """Issue a new SAS token. AEP revokes the previous one at this instant."""
    return _call(session, ctx, "POST", refresh=True)


def _call(session: requests.Session, ctx: AepContext, method: str, refresh: bool) -> DlzCredentials:
    what = f"AEP DLZ credentials {'refresh' if refresh else 'request'} (sandbox '{ctx.sandbox}')"
    params = {"type": CREDENTIAL_TYPE}
    if refresh:
        params["action"] = "refresh"
    response = send(
        session, method, f"{ctx.platform_url.rstrip('/')}{PATH}", what, params=params, headers=ctx.headers()
    )
    _raise_for_status(response, what, ctx)
    return parse_credentials(json_body(response, what), what)


def _raise_for_status(response: requests.Response, what: str, ctx: AepContext) -> None:
    status = response.status_code
    if status in (200, 201):
        return
    detail = error_detail(response)
    said = f"AEP answered {status}{f' ({detail})' if detail else ''}"
    if status == 401:
        hint = "the access token was rejected — check AEP_CLIENT_SECRET / AEP_ACCESS_TOKEN (expired or wrong?)"
    elif status == 403:
        hint = (
            f"check aep.client_id and aep.org_id ({ctx.org_id}) and that the API client has access to "
            f"sandbox '{ctx.sandbox}'"
        )
    elif status == 404:
        hint = f"check aep.sandbox ('{ctx.sandbox}'), aep.org_id and aep.platform_url"
    elif status == 400:
        hint = "check aep.org_id and aep.sandbox"
    elif status == 429 or status >= 500:
        hint = "AEP kept failing after retries — try again later (raise aep.retries / aep.max_retry_seconds)"
    else:
        hint = "unexpected answer"
    raise CredentialsError(f"{what}: {said} — {hint}")


_SAS_QUERY_RE = re.compile(r"[A-Za-z0-9_]+=[A-Za-z0-9%._~+/:=-]*(?:&[A-Za-z0-9_]+=[A-Za-z0-9%._~+/:=-]*)*")


def parse_credentials(body: dict[str, object], what: str = "AEP DLZ credentials") -> DlzCredentials:
    _refuse_other_cloud(body, what)
    fields = ("containerName", "storageAccountName", "SASToken", "expiryDate")
    missing = [f for f in fields if not isinstance(body.get(f), str) or not body.get(f)]
    if missing:
        raise CredentialsError(f"{what}: the answer lacks {', '.join(missing)} — AEP's API may have changed")
    container, account = str(body["containerName"]), str(body["storageAccountName"])
    token, expiry = str(body["SASToken"]), str(body["expiryDate"])
    # Used verbatim: the token is already URL-encoded exactly as Azure expects it.
    sas = Secret(token)
    if not is_sas_query(token):
        # Never shown: it may be a real token with one bad character.
        raise CredentialsError(
            f"{what}: SASToken is not a SAS query string (name=value pairs joined by '&', URL-encoded, "
            "with sv= and sig=) — AEP's answer is malformed; nothing was written, try again later"
        )
    if not _is_dns_label(container) or not account.isalnum():
        raise CredentialsError(f"{what}: container/account names {container!r}/{account!r} are not valid Azure names")
    try:
        expiry_date = dt.date.fromisoformat(expiry[:10])
    except ValueError:
        raise CredentialsError(f"{what}: expiryDate {expiry!r} is not a YYYY-MM-DD date") from None
    _check_sas_uri(body.get("SASUri"), container, account, what)
    creds = DlzCredentials(container, account, sas, expiry_date)
    if creds.days_left() < 0:
        raise CredentialsError(
            f"{what}: the SAS token expired on {expiry_date.isoformat()} — run `provision rotate` to issue a new one"
        )
    return creds


def is_sas_query(token: str) -> bool:
    """A service SAS is a URL query string (Azure "Create a service SAS": `sv`, `sr`, `sp`, `si`,
    `sig`, … each `name=value`, percent-encoded): no quote, space or newline can be part of one,
    and any would break the HCL string or the Spark config value it is written into."""
    if not _SAS_QUERY_RE.fullmatch(token):
        return False
    names = {part.partition("=")[0] for part in token.split("&")}
    return {"sv", "sig"} <= names


def _is_dns_label(name: str) -> bool:
    return 3 <= len(name) <= 63 and all((c.isalnum() and c.islower()) or c.isdigit() or c == "-" for c in name)


def _refuse_other_cloud(body: dict[str, object], what: str) -> None:
    """AEP on AWS answers with an S3 landing zone (Adobe `help/landing/multi-cloud.md`;
    `data-landing-zone.md`: `dlzProvider: "Amazon S3"`, `dlzPath.bucketName`, `credentials.aws*`).
    The Azure Databricks source reads the DLZ through WASB with a SAS token, so it cannot work there."""
    provider = body.get("dlzProvider")
    if provider is None and not isinstance(body.get("dlzPath"), dict):
        return
    if isinstance(provider, str) and "azure" in provider.lower():
        return
    path = body.get("dlzPath")
    bucket = path.get("bucketName") if isinstance(path, dict) else None
    where = f" (bucket {bucket})" if isinstance(bucket, str) else ""
    raise CredentialsError(
        f"{what}: this AEP sandbox runs on {provider or 'another cloud'} — its Data Landing Zone is not Azure "
        f"Blob storage{where}; the Azure Databricks source needs an Azure-hosted Experience Platform — use a "
        "sandbox of an Azure-hosted AEP organisation (check aep.org_id / aep.sandbox)"
    )


def _check_sas_uri(uri: object, container: str, account: str, what: str) -> None:
    """`SASUri` is the container URL plus the token: its host and path must name the same
    account and container as the separate fields, or the Spark key would point elsewhere."""
    if uri is None:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(str(uri))
    host = (parts.hostname or "").lower()
    path_container = parts.path.strip("/").split("/")[0]
    expected = f"{account.lower()}.blob.core.windows.net"
    if host != expected or path_container != container:
        shown = f"{parts.scheme}://{host}{parts.path}"  # never the query: it is the token
        raise CredentialsError(
            f"{what}: SASUri points at {shown}, not {expected}/{container} (storageAccountName/containerName) — "
            "AEP's answer is inconsistent; try again later or contact Adobe support"
        )
