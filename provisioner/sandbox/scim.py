"""Workspace SCIM: `Me`, and `Users`, `ServicePrincipals` and `Groups` — list, get, create,
replace, patch, delete (store/directory.py keeps them).

Who may do what (docs.databricks.com/dev-tools/api/latest/scim/index.html, "SCIM 2.0
APIs"; scim-users.html, "Get users"): "A Databricks workspace administrator can invoke all
SCIM API endpoints. Non-admin users and service principals can invoke the Me Get endpoint,
the Users Get endpoint to display names and IDs, and the Group Get endpoint to display group
display names and IDs" — so a non-admin's reads carry "username, user display name, and
object ID only" (no `groups`, no `members`) and every write needs an admin.

Requests as databricks-sdk-py sends them (`service/iam.py` `UsersAPI`, `GroupsAPI`,
`ServicePrincipalsAPI`): `filter`, `attributes`, `excludedAttributes`, `sortBy`,
`sortOrder`, `startIndex` (from 1) and `count`; the SDK pages until an answer has no
`Resources`, so `totalResults` is every match and `Resources` one page (RFC 7644 §3.4.2:
ListResponse, `itemsPerPage`). Filters (RFC 7644 §3.4.2.2, as far as Databricks supports
them — "equals(`eq`), contains(`co`), starts with(`sw`) and not equals(`ne`) … simple
expressions … `and` and `or`", the SDK's docstring of `list`): a value may be quoted with
`"` or `'`, or bare; string comparisons ignore case. A filter that does not parse is
400 `invalidFilter`. Errors have SCIM's own shape (RFC 7644 §3.12: `schemas`, `detail`,
`status`, `scimType`), which the SDK turns into `error_code` `SCIM_<status>`
(`errors/deserializer.py`); texts from terraform-provider-databricks `scim/` (store/directory.py).
PATCH operations (RFC 7644 §3.5.2) as the SDK's `Patch` and the provider send them:
`replace`/`add` with a `path` (`active`, `displayName`, `entitlements`, `roles`, `members`) or
with a `value` object; `remove` with `members[value eq "<id>"]` (or `entitlements[…]`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from provisioner.sandbox.store import SandboxStore
from provisioner.sandbox.store.directory import UNPARSABLE, ScimError
from provisioner.sandbox.store.identities import ADMINS
from provisioner.sandbox.wire import Request, Response, json_response

SCIM_PREFIX = "/api/2.0/preview/scim/v2/"
ME_PATH = SCIM_PREFIX + "Me"
_RESOURCE_RE = re.compile(r"^/api/2\.0/preview/scim/v2/(?P<kind>Users|ServicePrincipals|Groups)(?:/(?P<id>[^/]+))?$")
_KINDS = {"Users": "user", "ServicePrincipals": "service_principal"}
_SCHEMAS = {
    "Users": "urn:ietf:params:scim:schemas:core:2.0:User",
    "ServicePrincipals": "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal",
    "Groups": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_MEMBER_PATH_RE = re.compile(r'^(?P<attr>\w+)\[value eq "?(?P<value>[^"\]]*)"?\]$', re.IGNORECASE)


def is_scim(path: str) -> bool:
    return path == ME_PATH or _RESOURCE_RE.match(path) is not None


def scim_user(principal: Mapping[str, Any]) -> dict[str, Any]:
    """`Me`: the caller itself, its groups included."""
    return {
        "schemas": [_SCHEMAS["Users"]],
        "id": principal["id"],
        "userName": principal["userName"],
        "displayName": principal["displayName"],
        "active": True,
        "groups": [{"display": g, "type": "direct"} for g in principal.get("groups", [])],
        "emails": [{"value": principal["userName"], "primary": True}] if principal["type"] == "user" else [],
    }


def handle_scim(store: SandboxStore, request: Request, api_path: str, caller: Mapping[str, Any]) -> Response:
    """Answer any SCIM request (`api_path`: its path within the workspace, see `is_scim`)."""
    if api_path == ME_PATH:
        if request.method != "GET":
            return _scim_error(ScimError(405, f"Method {request.method} not allowed"))
        return json_response(200, scim_user(caller))
    match = _RESOURCE_RE.match(api_path)
    assert match is not None
    kind, resource_id = match.group("kind"), match.group("id")
    admin = ADMINS in caller.get("groups", [])
    query = {k: v[0] for k, v in request.query.items()}
    try:
        if request.method == "GET":
            if resource_id is None:
                return json_response(200, _list(store, kind, query, admin))
            return json_response(200, _shaped(_render(kind, _read(store, kind, resource_id), admin), query))
        if not admin:
            raise ScimError(403, "Only workspace admins can change users, service principals and groups.")
        body = _body(request)
        if request.method == "POST" and resource_id is None:
            return json_response(201, _render(kind, _create(store, kind, body), admin))
        if resource_id is None:
            raise ScimError(405, f"Method {request.method} not allowed")
        if request.method == "DELETE":
            _delete(store, kind, resource_id)
            return Response(204)
        if request.method == "PUT":
            return json_response(200, _render(kind, _update(store, kind, resource_id, body, replace=True), admin))
        if request.method == "PATCH":
            _patch(store, kind, resource_id, body)
            return json_response(200, _render(kind, _read(store, kind, resource_id), admin))
        raise ScimError(405, f"Method {request.method} not allowed")
    except ScimError as exc:
        return _scim_error(exc)


# ---- reads -----------------------------------------------------------------------------------


def _read(store: SandboxStore, kind: str, resource_id: str) -> dict[str, Any]:
    if kind == "Groups":
        return store.scim_group(resource_id)
    return store.scim_principal(_KINDS[kind], resource_id)


def _list(store: SandboxStore, kind: str, query: Mapping[str, str], admin: bool) -> dict[str, Any]:
    records = store.scim_groups() if kind == "Groups" else store.scim_principals(_KINDS[kind])
    items = [_render(kind, r, admin) for r in records]
    test = parse_filter(query.get("filter", ""))
    items = [item for item in items if test(item)]
    sort_by = query.get("sortBy")
    if sort_by:
        items.sort(key=lambda item: str(_attribute(item, sort_by) or "").lower())
    if (query.get("sortOrder") or "").lower() == "descending":
        items.reverse()
    start = max(1, _int(query.get("startIndex"), 1))
    count = max(0, _int(query.get("count"), 10_000))
    page = [_shaped(item, query) for item in items[start - 1 : start - 1 + count]]
    body: dict[str, Any] = {
        "schemas": [_LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": start,
        "itemsPerPage": len(page),
    }
    if page:
        body["Resources"] = page
    return body


def _render(kind: str, record: Mapping[str, Any], admin: bool) -> dict[str, Any]:
    """A resource as SCIM shows it; a non-admin sees names and ids only (module docstring)."""
    out: dict[str, Any] = {"schemas": [_SCHEMAS[kind]], "id": record["id"], "displayName": record["displayName"]}
    if kind == "Groups":
        if admin:
            out["members"] = [
                {
                    "display": m["display"],
                    "value": m["id"],
                    "$ref": f"{'Users' if m['kind'] == 'user' else 'ServicePrincipals'}/{m['id']}",
                }
                for m in record["members"]
            ]
        out["meta"] = {"resourceType": "WorkspaceGroup"}
    else:
        out["userName" if kind == "Users" else "applicationId"] = record["userName"]
        if kind == "Users":
            out["emails"] = record.get("emails") or [{"value": record["userName"], "type": "work", "primary": True}]
        if admin:
            out["active"] = bool(record.get("active", True))
            refs = {r["id"]: r for r in record.get("group_refs", [])}
            out["groups"] = [
                {"display": r["name"], "value": r["id"], "$ref": f"Groups/{r['id']}", "type": "direct"}
                for r in refs.values()
            ]
    if admin:
        for attribute in ("entitlements", "roles", "externalId", "name"):
            if record.get(attribute):
                out[attribute] = record[attribute]
    return out


def _shaped(item: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """`attributes` keeps only those (and `id`); `excludedAttributes` drops those (RFC 7644 §3.9)."""
    wanted = [a.strip() for a in (query.get("attributes") or "").split(",") if a.strip()]
    if wanted:
        item = {k: v for k, v in item.items() if k in ("id", "schemas") or k in wanted}
    for excluded in (query.get("excludedAttributes") or "").split(","):
        if excluded.strip() and excluded.strip() != "id":
            item.pop(excluded.strip(), None)
    return item


# ---- writes ----------------------------------------------------------------------------------


def _create(store: SandboxStore, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "Groups":
        return store.scim_create_group(body)
    return store.scim_create_principal(_KINDS[kind], body)


def _update(
    store: SandboxStore, kind: str, resource_id: str, fields: Mapping[str, Any], *, replace: bool
) -> dict[str, Any]:
    if kind == "Groups":
        return store.scim_update_group(resource_id, fields, replace=replace)
    return store.scim_update_principal(_KINDS[kind], resource_id, fields, replace=replace)


def _delete(store: SandboxStore, kind: str, resource_id: str) -> None:
    if kind == "Groups":
        store.scim_delete_group(resource_id)
    else:
        store.scim_delete_principal(_KINDS[kind], resource_id)


def _patch(store: SandboxStore, kind: str, resource_id: str, body: Mapping[str, Any]) -> None:
    operations = body.get("Operations") or body.get("operations")
    if not isinstance(operations, list):
        raise ScimError(400, "Operations is required", "invalidSyntax")
    _read(store, kind, resource_id)  # 404 before any change
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        path = str(operation.get("path") or "")
        value = operation.get("value")
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"Unsupported operation {op}", "invalidSyntax")
        if op == "remove":
            member = _MEMBER_PATH_RE.match(path)
            attribute = member.group("attr") if member else path
            values = [member.group("value")] if member else [str(v.get("value")) for v in value or []]
            if attribute == "members" and kind == "Groups":
                store.scim_group_members(resource_id, remove=values)
            elif kind == "Groups":
                store.scim_group_remove_attribute(resource_id, attribute, values)
            else:
                store.scim_remove_attribute(_KINDS[kind], resource_id, attribute, values)
            continue
        fields: dict[str, Any] = dict(value) if not path and isinstance(value, dict) else {path: value}
        members = fields.pop("members", None)
        if members is not None:
            if kind != "Groups":
                raise ScimError(400, "members is a Groups attribute", "invalidPath")
            ids = [str(m.get("value")) for m in (members if isinstance(members, list) else [members])]
            if op == "replace":
                current = {m["id"] for m in store.scim_group(resource_id)["members"]}
                store.scim_group_members(resource_id, add=sorted(set(ids) - current), remove=sorted(current - set(ids)))
            else:
                store.scim_group_members(resource_id, add=ids)
        if fields:
            _update(store, kind, resource_id, fields, replace=False)


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ScimError(400, UNPARSABLE, "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, UNPARSABLE, "invalidSyntax")
    return body


def _scim_error(exc: ScimError) -> Response:
    body: dict[str, Any] = {"schemas": [_ERROR_SCHEMA], "detail": exc.message, "status": str(exc.status)}
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return json_response(exc.status, body)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ScimError(400, f"Invalid number {value}", "invalidValue") from None


# ---- filters ---------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r'\s*(?:(?P<quoted>"[^"]*"|\'[^\']*\')|(?P<word>[^\s()]+))')
_OPERATORS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}


def parse_filter(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for a SCIM filter: `attr op value` or `attr pr`, joined by `and` / `or`
    (`and` binds tighter). Anything else raises 400 `invalidFilter`."""
    if not text.strip():
        return lambda item: True
    tokens: list[tuple[str, bool]] = []  # (text, was quoted)
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise _bad_filter(text)
            break
        quoted = match.group("quoted")
        tokens.append((quoted[1:-1], True) if quoted else (match.group("word"), False))
        position = match.end()
    disjuncts: list[list[Callable[[Mapping[str, Any]], bool]]] = [[]]
    index = 0
    while True:
        if index + 1 >= len(tokens):
            raise _bad_filter(text)
        attribute, operator = tokens[index][0], tokens[index + 1][0].lower()
        if tokens[index][1] or not re.fullmatch(r"[A-Za-z][\w.$]*", attribute):
            raise _bad_filter(text)
        if operator == "pr":
            disjuncts[-1].append(_present(attribute))
            index += 2
        elif operator in _OPERATORS and index + 2 < len(tokens):
            disjuncts[-1].append(_comparison(attribute, operator, tokens[index + 2][0]))
            index += 3
        else:
            raise _bad_filter(text)
        if index == len(tokens):
            break
        joiner = tokens[index][0].lower()
        if joiner == "or":
            disjuncts.append([])
        elif joiner != "and":
            raise _bad_filter(text)
        index += 1
    return lambda item: any(all(test(item) for test in conjunct) for conjunct in disjuncts)


def _comparison(attribute: str, operator: str, expected: str) -> Callable[[Mapping[str, Any]], bool]:
    def test(item: Mapping[str, Any]) -> bool:
        value = _attribute(item, attribute)
        values = value if isinstance(value, list) else [value]
        for one in values:
            have = str(one).lower()
            want = expected.lower()
            if one is None:
                continue
            if (
                (operator == "eq" and have == want)
                or (operator == "co" and want in have)
                or (operator == "sw" and have.startswith(want))
                or (operator == "ew" and have.endswith(want))
                or (operator in ("gt", "ge", "lt", "le") and _ordered(operator, have, want))
            ):
                return True
        return operator == "ne" and all(str(v).lower() != expected.lower() for v in values if v is not None)

    return test


def _present(attribute: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda item: _attribute(item, attribute) not in (None, "", [])


def _ordered(operator: str, have: str, want: str) -> bool:
    return {"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[operator]


def _attribute(item: Mapping[str, Any], path: str) -> Any:
    """`userName`, `emails.value`, `groups.display`: a value, or a list of them for a multi-valued one."""
    head, _, rest = path.partition(".")
    found = next((v for k, v in item.items() if k.lower() == head.lower()), None)
    if not rest:
        return found
    if isinstance(found, list):
        return [e.get(rest) for e in found if isinstance(e, dict)]
    return found.get(rest) if isinstance(found, dict) else None


def _bad_filter(text: str) -> ScimError:
    return ScimError(400, f"Invalid filter: {text}", "invalidFilter")
