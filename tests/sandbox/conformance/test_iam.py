"""Identity: databricks-sdk-py `tests/integration/test_iam.py`, databricks-sdk-go
`internal/scim_test.go`. (test_account_users_list_pagination needs an account console: not
emulated.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from databricks.sdk import WorkspaceClient, errors
from databricks.sdk.core import DatabricksError
from databricks.sdk.service import iam

PATCH = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


def test_filtering_groups(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-py test_filtering_groups."""
    assert len(list(w.groups.list(filter=f"displayName eq any-{random(12)}"))) == 0


def test_scim_error_unmarshall(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-py test_scim_error_unmarshall."""
    with pytest.raises(DatabricksError) as exc_info:
        next(iter(w.groups.list(filter=random(12))))
    assert isinstance(exc_info.value, errors.BadRequest)


def test_scim_get_user_as_dict(w: WorkspaceClient) -> None:
    """sdk-py test_scim_get_user_as_dict."""
    first_user = next(iter(w.users.list()))
    assert first_user.id is not None
    w.users.get(first_user.id).as_dict()


@pytest.mark.parametrize(
    "path,call",
    [
        ("/api/2.0/preview/scim/v2/Users", lambda w: w.users.list(count=10)),
        ("/api/2.0/preview/scim/v2/Groups", lambda w: w.groups.list(count=4)),
        ("/api/2.0/preview/scim/v2/ServicePrincipals", lambda w: w.service_principals.list(count=1)),
    ],
)
def test_workspace_users_list_pagination(
    w: WorkspaceClient, path: str, call: Callable[[WorkspaceClient], object]
) -> None:
    """sdk-py test_workspace_users_list_pagination, with more items than a page holds."""
    for n in range(5):
        w.groups.create(display_name=f"page-{n}-{id(call)}")
        w.service_principals.create(display_name=f"page-{n}-{id(call)}")
    raw = w.api_client.do("GET", path, query={"count": 1})
    assert isinstance(raw, dict)
    assert len(list(call(w))) == raw["totalResults"]  # type: ignore[call-overload]


def test_current_user(w: WorkspaceClient) -> None:
    """sdk-go TestAccCurrentUser."""
    assert w.current_user.me().user_name


def test_workspace_users(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccWorkspaceUsers."""
    user = w.users.create(display_name=f"Me {random(6)}", user_name=f"sdk-{random(8)}@example.com")
    assert user.id is not None and user.user_name is not None
    fetched = w.users.get(user.id)
    assert fetched.display_name == user.display_name
    w.users.patch(user.id, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value="false")], schemas=PATCH)
    w.users.update(user.id, user_name=user.user_name, active=True)
    by_name = list(w.users.list(filter=f'userName eq "{fetched.user_name}"'))
    assert [u.id for u in by_name] == [fetched.id]
    all_users = list(
        w.users.list(attributes="id,userName", sort_by="userName", sort_order=iam.ListSortOrder.DESCENDING)
    )
    names_to_ids = {u.user_name: u.id for u in w.users.list(attributes="id,userName")}
    assert len(names_to_ids) == len(all_users)
    assert names_to_ids[user.user_name] == user.id
    w.users.delete(user.id)
    with pytest.raises(errors.NotFound):
        w.users.get(user.id)


def test_groups(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccGroups."""
    group = w.groups.create(display_name=f"go-sdk-{random(8)}")
    assert group.id is not None
    fetched = w.groups.get(group.id)
    assert fetched.display_name == group.display_name
    by_name = list(w.groups.list(filter=f'displayName eq "{fetched.display_name}"'))
    assert [g.id for g in by_name] == [fetched.id]
    names_to_ids = {
        g.display_name: g.id
        for g in w.groups.list(
            sort_order=iam.ListSortOrder.DESCENDING, excluded_attributes="roles", filter="displayName sw 'go-sdk-'"
        )
    }
    assert names_to_ids[group.display_name] == group.id
    w.groups.delete(group.id)
    with pytest.raises(errors.NotFound):
        w.groups.get(group.id)


def test_service_principals(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-go TestAccServicePrincipalsOnAWS: a Databricks-managed service principal (also on Azure,
    its application id generated — provider docs/resources/service_principal.md)."""
    created = w.service_principals.create(display_name=f"go-sdk-{random(8)}")
    assert created.id is not None and created.application_id
    w.service_principals.update(
        created.id, display_name=f"go-sdk-updated-{random(8)}", roles=[iam.ComplexValue(value="xyz")]
    )
    by_id = w.service_principals.get(created.id)
    by_name = list(w.service_principals.list(filter=f'displayName eq "{by_id.display_name}"'))
    assert [p.id for p in by_name] == [by_id.id]
    w.service_principals.patch(
        created.id, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value="false")], schemas=PATCH
    )
    everyone = list(w.service_principals.list())
    names = {p.display_name: p.id for p in everyone}
    assert len(names) == len(everyone) and names[by_id.display_name] == by_id.id
    w.service_principals.delete(created.id)
