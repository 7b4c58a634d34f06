"""AEP Flow Service: the Azure Databricks *base connection* (Access Token Authentication).

`POST /data/foundation/flowservice/connections` creates one; `GET …?property=connectionSpec.id==<id>`
lists them (paginated through `_links.next.href`). AEP never returns the stored access
token, so an existing connection is recognised by its `domain` + `clusterId` params.

The create is not idempotent: a POST whose answer was lost (timeout, 5xx from a gateway)
may have created the connection, and a blind retry creates a duplicate
(`../shared/reference/real-world-facts.md`, AEP). So the POST is sent once per attempt,
never retried by the transport, and before each new attempt the connection is looked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from provisioner.aep.client import AepClient
from provisioner.aep.http import HttpSettings, error_detail, json_body, send, single_attempt_session
from provisioner.errors import CredentialsError, ProvisionError
from provisioner.secret import Secret

DATABRICKS_CONNECTION_SPEC = "e9d7ec6b-0873-4e57-ad21-b3a7c65e310b"
AUTH_SPEC_NAME = "Access Token Authentication"
PATH = "/data/foundation/flowservice/connections"
MAX_PAGES = 200  # a loop guard: a broken `next` link must not spin forever
CREATE_ATTEMPTS = 3
_LOST = frozenset({429, 500, 502, 503, 504})


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
        settings = aep.settings
        self._once = single_attempt_session(
            HttpSettings(settings.timeout_seconds, settings.retries, settings.max_retry_seconds)
        )

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
        want = norm_domain(domain)
        for item in self.connections():
            params = (item.get("auth") or {}).get("params") or {}
            if norm_domain(str(params.get("domain", ""))) == want and params.get("clusterId") == cluster_id:
                return item
        return None

    def create(self, request: ConnectionRequest) -> str:
        """POST once per attempt; after a lost answer, the connection it may have made is looked up first."""
        what = f"AEP Flow Service: create connection (sandbox '{self.aep.settings.sandbox}')"
        lost = ""
        for attempt in range(CREATE_ATTEMPTS):
            if attempt:
                existing = self.find(request.domain, request.cluster_id)
                if existing is not None and existing.get("id"):
                    return str(existing["id"])  # the lost POST did create it
                self.aep.clock.sleep(min(2.0**attempt, 10.0))
            try:
                response = send(
                    self._once, "POST", self._url(PATH), what, json=request.body(), headers=self.aep.context().headers()
                )
            except CredentialsError as exc:  # timeout / connection reset: the POST may have landed
                lost = str(exc)
                continue
            if response.status_code in _LOST:
                lost = f"AEP answered {response.status_code}"
                continue
            body = _checked(response, what)
            if not body.get("id"):
                raise FlowServiceError(f"{what}: the answer has no connection id — AEP's API may have changed")
            return str(body["id"])
        existing = self.find(request.domain, request.cluster_id)
        if existing is not None and existing.get("id"):
            return str(existing["id"])
        raise FlowServiceError(
            f"{what}: {lost} on each of {CREATE_ATTEMPTS} attempts, and no connection for cluster "
            f"{request.cluster_id} exists — try `provision connect` again later"
        )

    def update_auth(
        self, connection: dict[str, Any], access_token: Secret, description: str, cluster_id: str | None = None
    ) -> str:
        """Give an existing base connection a new access token (and cluster); its new etag.

        `PATCH /connections/{id}` with the connection's etag in `If-Match` and a JSON Patch body
        (Adobe "Update accounts using the Flow Service API", `sources/api-tutorials/update`:
        "A PATCH request requires the use of the If-Match header"; name, description and
        credentials may be changed). `/auth/params` is replaced whole, as the docs show; AEP never
        returns the stored token, so it is always sent. `description` records the token's id and
        expiry (never its value) in the same compare-and-set, so the record cannot disagree with
        the token AEP holds. 412: someone changed the connection since it was read.
        """
        what = f"AEP Flow Service: update connection {connection.get('id')} (sandbox '{self.aep.settings.sandbox}')"
        params = dict((connection.get("auth") or {}).get("params") or {})
        params["accessToken"] = access_token.reveal()
        if cluster_id is not None:
            params["clusterId"] = cluster_id
        ops = [
            {"op": "replace", "path": "/auth/params", "value": params},
            {"op": "add", "path": "/description", "value": description},
        ]
        headers = {**self.aep.context().headers(), "If-Match": str(connection.get("etag") or "")}
        response = send(
            self.aep.session, "PATCH", self._url(f"{PATH}/{connection['id']}"), what, json=ops, headers=headers
        )
        if response.status_code == 412:
            raise FlowServiceError(f"{what}: changed by someone else meanwhile (etag mismatch) — run it again")
        return str(_checked(response, what).get("etag") or "")

    def get(self, connection_id: str) -> dict[str, Any] | None:
        """`GET /connections/{id}` (its `items[0]`); None when AEP does not know it."""
        what = f"AEP Flow Service: connection {connection_id} (sandbox '{self.aep.settings.sandbox}')"
        response = send(
            self.aep.session, "GET", self._url(f"{PATH}/{connection_id}"), what, headers=self.aep.context().headers()
        )
        if response.status_code == 404:
            return None
        items = _checked(response, what).get("items") or []
        return items[0] if items and isinstance(items[0], dict) else None

    def explore(self, connection_id: str) -> str | None:
        """Can AEP read the source through this connection? None when it can, else AEP's reason.

        `GET /connections/{id}/explore?objectType=root` lists the source's tables with the
        connection's stored credentials (Adobe `sources/api-tutorials/explore/tabular`): the one
        proof, from AEP's side, that the token it holds works. A refusal for the connection (4xx
        but 401/403/404 of the gateway) is the answer; anything else is an error."""
        what = f"AEP Flow Service: explore connection {connection_id} (sandbox '{self.aep.settings.sandbox}')"
        response = send(
            self.aep.session,
            "GET",
            self._url(f"{PATH}/{connection_id}/explore"),
            what,
            params={"objectType": "root"},
            headers=self.aep.context().headers(),
        )
        if response.status_code == 200:
            return None
        if response.status_code == 400:
            return error_detail(response) or "AEP answered 400"
        _checked(response, what)
        return f"AEP answered {response.status_code}"


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


def norm_domain(domain: str) -> str:
    domain = domain.strip().rstrip("/").lower()
    return domain if "://" in domain else "https://" + domain
