"""AEP Flow Service: the Azure Databricks *base connection* (Access Token Authentication).

`POST /data/foundation/flowservice/connections` creates one; `GET …?property=connectionSpec.id==<id>`
lists them (paginated through `_links.next.href`). AEP never returns the stored access
token, so an existing connection is recognised by its `domain` + `clusterId` params.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from provisioner.aep.client import AepClient
from provisioner.aep.http import error_detail, json_body, send
from provisioner.errors import ProvisionError
from provisioner.secret import Secret

DATABRICKS_CONNECTION_SPEC = "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b"
AUTH_SPEC_NAME = "Access Token Authentication"
PATH = "/data/foundation/flowservice/connections"
MAX_PAGES = 200  # a loop guard: a broken `next` link must not spin forever


class FlowServiceError(ProvisionError):
    """Flow Service refused or failed."""


@dataclass(frozen=True)
class ConnectionRequest:
    name: str
    domain: str
    cluster_id: str
    access_token: Secret
    database: str = "default"
    catalog: str | None = None
    description: str = "Created by dlz-provisioner"

    def body(self) -> dict[str, Any]:
        params: dict[str, str] = {
            "domain": self.domain,
            "clusterId": self.cluster_id,
            "accessToken": self.access_token.reveal(),
            "database": self.database,
        }
        if self.catalog:
            params["catalog"] = self.catalog
        return {
            "name": self.name,
            "description": self.description,
            "auth": {"specName": AUTH_SPEC_NAME, "params": params},
            "connectionSpec": {"id": DATABRICKS_CONNECTION_SPEC, "version": "1.0"},
        }


class FlowServiceClient:
    def __init__(self, aep: AepClient) -> None:
        self.aep = aep

    def _url(self, path_or_url: str) -> str:
        return urljoin(self.aep.settings.platform_url.rstrip("/") + "/", path_or_url)

    def connections(self) -> Iterator[dict[str, Any]]:
        """Every Databricks base connection of this org + sandbox, following `_links.next.href`."""
        what = f"AEP Flow Service connections (sandbox '{self.aep.settings.sandbox}')"
        url: str | None = self._url(PATH)
        params: dict[str, str] | None = {"property": f"connectionSpec.id=={DATABRICKS_CONNECTION_SPEC}"}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None or url in seen:
                return
            seen.add(url)
            response = send(self.aep.session, "GET", url, what, params=params, headers=self.aep.context().headers())
            body = _checked(response, what)
            yield from (item for item in body.get("items", []) if isinstance(item, dict))
            href = ((body.get("_links") or {}).get("next") or {}).get("href")
            url, params = (self._url(str(href)), None) if href else (None, None)

    def find(self, domain: str, cluster_id: str) -> dict[str, Any] | None:
        want = _norm(domain)
        for item in self.connections():
            params = (item.get("auth") or {}).get("params") or {}
            if _norm(str(params.get("domain", ""))) == want and params.get("clusterId") == cluster_id:
                return item
        return None

    def create(self, request: ConnectionRequest) -> str:
        what = f"AEP Flow Service: create connection (sandbox '{self.aep.settings.sandbox}')"
        response = send(
            self.aep.session, "POST", self._url(PATH), what, json=request.body(), headers=self.aep.context().headers()
        )
        body = _checked(response, what)
        if not body.get("id"):
            raise FlowServiceError(f"{what}: the answer has no connection id — AEP's API may have changed")
        return str(body["id"])


def _checked(response: Any, what: str) -> dict[str, Any]:
    if response.status_code in (200, 201):
        return json_body(response, what)
    detail = error_detail(response)
    hint = {
        401: "the AEP access token was rejected — check AEP_CLIENT_SECRET",
        403: "the API client lacks Flow Service access to this sandbox",
        400: "AEP refused the request — check the cluster (running, all-purpose) and the parameters",
    }.get(response.status_code, "try again later")
    raise FlowServiceError(f"{what}: AEP answered {response.status_code}{f' ({detail})' if detail else ''} — {hint}")


def _norm(domain: str) -> str:
    domain = domain.strip().rstrip("/").lower()
    return domain if "://" in domain else "https://" + domain
