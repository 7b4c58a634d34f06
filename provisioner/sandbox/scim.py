"""Workspace SCIM reads: `Me`, and `Users` / `ServicePrincipals` lists filtered by name.

Who may read what (docs.databricks.com/dev-tools/api/latest/scim/index.html, "SCIM 2.0
APIs"; scim-users.html, "Get users"): "A Databricks workspace administrator can invoke all
SCIM API endpoints. Non-admin users and service principals can invoke the Me Get endpoint,
the Users Get endpoint to display names and IDs, and the Group Get endpoint to display group
display names and IDs" — a non-admin's user list carries "username, user display name, and
object ID only", so only an admin learns another principal's `groups`. `Me` always lists
the caller's own groups.

Request shape as databricks-sdk-py sends it (`service/iam.py` `UsersAPI.list`,
`ServicePrincipalsAPI.list`): `filter` (`userName eq "…"` / `applicationId eq "…"`,
the only filters modelled), `startIndex` from 1 and `count`, paging until an answer has no
`Resources`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from provisioner.sandbox.store.identities import ADMINS
from provisioner.sandbox.wire import Response, json_response

ME_PATH = "/api/2.0/preview/scim/v2/Me"
LIST_PATHS = {
    "/api/2.0/preview/scim/v2/Users": ("user", "userName"),
    "/api/2.0/preview/scim/v2/ServicePrincipals": ("service_principal", "applicationId"),
}
_FILTER_RE = re.compile(r'^\s*(?P<attr>\w+)\s+eq\s+"?(?P<value>[^"]*)"?\s*$', re.IGNORECASE)
_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def scim_user(principal: Mapping[str, Any]) -> dict[str, Any]:
    """`Me`: the caller itself, its groups included."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": principal["id"],
        "userName": principal["userName"],
        "displayName": principal["displayName"],
        "active": True,
        "groups": [{"display": g, "type": "direct"} for g in principal.get("groups", [])],
        "emails": [{"value": principal["userName"], "primary": True}] if principal["type"] == "user" else [],
    }


def scim_list(
    path: str,
    query: Mapping[str, str],
    caller: Mapping[str, Any],
    find: Callable[[str], Mapping[str, Any] | None],
) -> Response:
    """One page of a filtered Users / ServicePrincipals list; `find(name)` looks a principal up."""
    kind, name_attr = LIST_PATHS[path]
    match = _FILTER_RE.match(query.get("filter", ""))
    if match is None or match.group("attr") != name_attr:
        # Unfiltered listing is not modelled: the tool only ever asks for one principal.
        return json_response(
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": f'filter must be {name_attr} eq "…"'},
        )
    found = find(match.group("value"))
    items = [] if found is None or found["type"] != kind else [_listed(found, name_attr, caller)]
    start = max(1, int(query.get("startIndex") or 1))
    page = items[start - 1 :]
    body: dict[str, Any] = {
        "schemas": [_LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": start,
        "itemsPerPage": len(page),
    }
    if page:
        body["Resources"] = page
    return json_response(200, body)


def _listed(principal: Mapping[str, Any], name_attr: str, caller: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": principal["id"],
        name_attr: principal["userName"],
        "displayName": principal["displayName"],
    }
    if ADMINS in caller.get("groups", []):
        item["groups"] = [{"display": g, "type": "direct"} for g in principal.get("groups", [])]
    return item
