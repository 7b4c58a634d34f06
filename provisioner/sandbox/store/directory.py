"""The workspace directory SCIM serves: users, service principals and groups, by id.

Principals live in store/identities.py (with their credentials); this mixin gives them
the SCIM life cycle (create, read, replace, patch, delete) and adds groups with ids.
Membership stays where identities.py keeps it, as group names on the principal, so a
change through SCIM (`PATCH Groups/<admins>` removing a member) is what the permission
checks see at once.

Real behaviours copied (Databricks "SCIM API 2.0 (Groups)", "(Users)", "(ServicePrincipals)";
databricks-sdk-py `service/iam.py`; terraform-provider-databricks `scim/`):
- the system groups `admins` and `users` always exist; every user and service principal is
  in `users` (it cannot be left), `admins` cannot be deleted;
- a display name is unique among groups, a userName among users, an applicationId among
  service principals: a second one is 409 "Group with name X already exists.",
  "User with username X already exists.", "Service principal with application ID X
  already exists." (the texts `scim/resource_group.go`, `resource_user.go` and
  `resource_service_principal.go` match on);
- a Databricks-managed service principal gets its application id generated
  (provider `docs/resources/service_principal.md`, `application_id`);
- a deactivated principal (`active: false`) cannot authenticate (identities.py);
- deleting a principal revokes its PATs and OAuth secret.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from provisioner.sandbox.store.base import DatabricksError, State, StoreBase
from provisioner.sandbox.store.identities import ADMINS, USERS, _identities, _principal

SYSTEM_GROUPS = (ADMINS, USERS)
UNPARSABLE = "Request is unparsable, syntactically incorrect, or violates schema."


class ScimError(DatabricksError):
    """An error SCIM answers in its own shape (RFC 7644 §3.12): `detail`, `status`, `scimType`."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(status, f"SCIM_{status}", detail)
        self.scim_type = scim_type


def _groups(state: State) -> dict[str, Any]:
    ids = _identities(state)
    groups: dict[str, Any] = ids.setdefault("groups", {})
    known = {g["displayName"] for g in groups.values()}
    for name in SYSTEM_GROUPS:
        if name not in known:
            groups[_new_id(ids)] = {"displayName": name}
            known.add(name)  # else a principal's membership would make the group a second time
    for principal in ids["principals"].values():
        for name in principal.get("groups", []):
            if name not in known:
                groups[_new_id(ids)] = {"displayName": name}
                known.add(name)
    return groups


def _new_id(ids: Mapping[str, Any]) -> str:
    return str(1_000_000_000_000 + secrets.randbelow(8_000_000_000_000))


def _group_id(state: State, name: str) -> str:
    for gid, group in _groups(state).items():
        if group["displayName"] == name:
            return str(gid)
    raise KeyError(name)


class DirectoryStore(StoreBase):
    # ---- principals ------------------------------------------------------------------------

    def scim_principals(self, kind: str) -> list[dict[str, Any]]:
        """Every user (`kind` "user") or service principal, with its groups as `{id, name}`."""
        with self._txn() as state:
            ids = _identities(state)
            return [_with_group_ids(state, p) for p in ids["principals"].values() if p["type"] == kind]

    def scim_principal(self, kind: str, principal_id: str) -> dict[str, Any]:
        with self._txn() as state:
            principal = _identities(state)["principals"].get(principal_id)
            if principal is None or principal["type"] != kind:
                raise ScimError(404, "Item not found")
            return _with_group_ids(state, principal)

    def scim_create_principal(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self._txn() as state:
            ids = _identities(state)
            if kind == "user":
                name = str(fields.get("userName") or "")
                if not name:
                    raise ScimError(400, UNPARSABLE, "invalidValue")
                conflict = f"User with username {name} already exists."
                display = str(fields.get("displayName") or name)
            else:
                name = str(fields.get("applicationId") or uuid.uuid4())
                conflict = f"Service principal with application ID {name} already exists."
                display = str(fields.get("displayName") or name)
            if any(p["userName"].lower() == name.lower() for p in ids["principals"].values()):
                raise ScimError(409, conflict, "uniqueness")
            principal = ids["principals"][_principal(ids, name, display, kind, False)["id"]]
            _apply(principal, fields, replace=False)
            for group in fields.get("groups") or []:
                principal["groups"] = sorted({*principal["groups"], _group_name(state, str(group.get("value")))})
            return _with_group_ids(state, principal)

    def scim_update_principal(
        self, kind: str, principal_id: str, fields: Mapping[str, Any], *, replace: bool
    ) -> dict[str, Any]:
        """PUT (`replace`: every modelled attribute from `fields`) or one PATCH operation's values."""
        with self._txn() as state:
            principal = _identities(state)["principals"].get(principal_id)
            if principal is None or principal["type"] != kind:
                raise ScimError(404, "Item not found")
            _apply(principal, fields, replace=replace)
            if replace and "groups" in fields:
                principal["groups"] = sorted({_group_name(state, str(g.get("value"))) for g in fields["groups"] or []})
            return _with_group_ids(state, principal)

    def scim_remove_attribute(self, kind: str, principal_id: str, attribute: str, values: Iterable[str]) -> None:
        """PATCH `remove` of `entitlements[value eq "x"]` / `roles[…]` (all of them without values)."""
        with self._txn() as state:
            principal = _identities(state)["principals"].get(principal_id)
            if principal is None or principal["type"] != kind:
                raise ScimError(404, "Item not found")
            _remove_values(principal, attribute, values)

    def scim_delete_principal(self, kind: str, principal_id: str) -> None:
        with self._txn() as state:
            ids = _identities(state)
            principal = ids["principals"].get(principal_id)
            if principal is None or principal["type"] != kind:
                raise ScimError(404, "Item not found")
            del ids["principals"][principal_id]
            ids["pats"] = {k: v for k, v in ids["pats"].items() if v != principal_id}
            ids["oauth_clients"] = {k: v for k, v in ids["oauth_clients"].items() if v["principal"] != principal_id}
            ids["oauth_tokens"] = {k: v for k, v in ids["oauth_tokens"].items() if v["principal"] != principal_id}
            ids["pat_info"] = {k: v for k, v in ids.get("pat_info", {}).items() if v["owner"] != principal_id}

    # ---- groups --------------------------------------------------------------------------------

    def scim_groups(self) -> list[dict[str, Any]]:
        with self._txn() as state:
            return [_group_view(state, gid) for gid in _groups(state)]

    def group_names(self) -> set[str]:
        """Every workspace group's display name (an ACL entry naming one is a `group_name`)."""
        with self._txn() as state:
            return {str(g["displayName"]) for g in _groups(state).values()}

    def scim_group(self, group_id: str) -> dict[str, Any]:
        with self._txn() as state:
            if group_id not in _groups(state):
                raise ScimError(404, "Item not found")
            return _group_view(state, group_id)

    def scim_create_group(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        name = str(fields.get("displayName") or "")
        if not name:
            raise ScimError(400, UNPARSABLE, "invalidValue")
        with self._txn() as state:
            groups = _groups(state)
            if any(g["displayName"] == name for g in groups.values()):
                raise ScimError(409, f"Group with name {name} already exists.", "uniqueness")
            gid = _new_id(_identities(state))
            groups[gid] = {"displayName": name}
            _apply(groups[gid], fields, replace=False)
            _set_members(state, name, add=[str(m.get("value")) for m in fields.get("members") or []], remove=[])
            return _group_view(state, gid)

    def scim_update_group(self, group_id: str, fields: Mapping[str, Any], *, replace: bool) -> dict[str, Any]:
        with self._txn() as state:
            groups = _groups(state)
            group = groups.get(group_id)
            if group is None:
                raise ScimError(404, "Item not found")
            old = group["displayName"]
            new = str(fields.get("displayName") or old)
            if new != old:
                if old in SYSTEM_GROUPS:
                    raise ScimError(400, f"Cannot rename the system group {old}.", "mutability")
                if any(g["displayName"] == new for g in groups.values()):
                    raise ScimError(409, f"Group with name {new} already exists.", "uniqueness")
                for principal in _identities(state)["principals"].values():
                    if old in principal.get("groups", []):
                        principal["groups"] = sorted({*principal["groups"], new} - {old})
            _apply(group, {k: v for k, v in fields.items() if k != "members"}, replace=replace)
            group["displayName"] = new
            if replace and "members" in fields:
                wanted = {str(m.get("value")) for m in fields["members"] or []}
                current = {p["id"] for p in _members(state, new)}
                _set_members(state, new, add=sorted(wanted - current), remove=sorted(current - wanted))
            return _group_view(state, group_id)

    def scim_group_members(self, group_id: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """PATCH `add` / `remove` of `members` (principal ids)."""
        with self._txn() as state:
            group = _groups(state).get(group_id)
            if group is None:
                raise ScimError(404, "Item not found")
            _set_members(state, group["displayName"], add=list(add), remove=list(remove))

    def scim_group_remove_attribute(self, group_id: str, attribute: str, values: Iterable[str]) -> None:
        with self._txn() as state:
            group = _groups(state).get(group_id)
            if group is None:
                raise ScimError(404, "Item not found")
            _remove_values(group, attribute, values)

    def scim_delete_group(self, group_id: str) -> None:
        with self._txn() as state:
            groups = _groups(state)
            group = groups.get(group_id)
            if group is None:
                raise ScimError(404, "Item not found")
            if group["displayName"] in SYSTEM_GROUPS:
                raise ScimError(400, f"Cannot delete the system group {group['displayName']}.", "mutability")
            del groups[group_id]
            for principal in _identities(state)["principals"].values():
                principal["groups"] = sorted(set(principal.get("groups", [])) - {group["displayName"]})


_MODELLED = ("displayName", "active", "entitlements", "roles", "externalId", "emails", "name")


def _apply(record: dict[str, Any], fields: Mapping[str, Any], *, replace: bool) -> None:
    for attribute in _MODELLED:
        if attribute == "displayName" and "userName" in record and not fields.get(attribute) and replace:
            continue  # a user keeps a display name
        if attribute in fields:
            value = fields[attribute]
            if attribute == "active" and isinstance(value, str):
                value = value.lower() == "true"
            if attribute in ("entitlements", "roles") and not replace:
                have = {e.get("value") for e in record.get(attribute, [])}
                value = record.get(attribute, []) + [e for e in value or [] if e.get("value") not in have]
            record[attribute] = value
        elif replace and attribute in ("entitlements", "roles", "externalId"):
            record.pop(attribute, None)


def _remove_values(record: dict[str, Any], attribute: str, values: Iterable[str]) -> None:
    drop = set(values)
    if attribute not in ("entitlements", "roles"):
        raise ScimError(400, f"Unsupported path {attribute}", "invalidPath")
    record[attribute] = [e for e in record.get(attribute, []) if drop and e.get("value") not in drop]


def _group_name(state: State, group_id: str) -> str:
    group = _groups(state).get(group_id)
    if group is None:
        raise ScimError(404, f"Group {group_id} not found")
    return str(group["displayName"])


def _members(state: State, name: str) -> list[dict[str, Any]]:
    principals = _identities(state)["principals"].values()
    if name == USERS:
        return [p for p in principals if p.get("type") in ("user", "service_principal")]
    return [p for p in principals if name in p.get("groups", [])]


def _set_members(state: State, name: str, *, add: list[str], remove: list[str]) -> None:
    principals = _identities(state)["principals"]
    for pid in add + remove:
        if pid not in principals:
            raise ScimError(404, f"Member {pid} not found", "invalidValue")
    if name == USERS and (add or remove):
        raise ScimError(400, "The members of the users group cannot be changed.", "mutability")
    for pid in add:
        principals[pid]["groups"] = sorted({*principals[pid].get("groups", []), name})
    for pid in remove:
        principals[pid]["groups"] = sorted(set(principals[pid].get("groups", [])) - {name})


def _with_group_ids(state: State, principal: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(principal)
    out["group_refs"] = [{"id": _group_id(state, g), "name": g} for g in [*principal.get("groups", []), USERS]]
    return out


def _group_view(state: State, group_id: str) -> dict[str, Any]:
    group = _groups(state)[group_id]
    return {
        "id": group_id,
        **group,
        "members": [
            {"id": p["id"], "display": p["displayName"], "kind": p["type"]}
            for p in _members(state, group["displayName"])
        ],
    }
