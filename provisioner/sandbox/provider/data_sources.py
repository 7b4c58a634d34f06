"""The data sources the sandbox emulates, each reading the workspace emulator as the real one
reads a workspace (terraform-provider-databricks, file named on each class).

Every data source's schema is the real one (snapshot.py); a read returns the configuration
with the computed attributes filled in. Errors are the provider's texts, as diagnostics.
"""

from __future__ import annotations

import re
import threading
from typing import Any, ClassVar

from tf.iface import DataSource, ReadDataContext, State
from tf.schema import Schema
from tf.utils import Diagnostics

from provisioner.sandbox.provider.client import ApiError, load_sdk
from provisioner.sandbox.provider.snapshot import data_source_schema
from provisioner.sandbox.provider.structs import from_api
from provisioner.secret import mask

SCIM = "/api/2.0/preview/scim/v2"
# scim/data_current_user.go `nonAlphanumeric`.
_NON_ALPHANUMERIC = re.compile(r"\W")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# Terraform reads data sources in parallel; the SDK's lazy package set-up is not thread-safe.
_SDK_LOCK = threading.Lock()


class DataError(Exception):
    """What the provider reports for a data source (shown as it is)."""


def _select(method: str, versions: dict[str, Any] | None, node_types: dict[str, Any] | None, **kwargs: Any) -> str:
    """The SDK's own `ClustersExt.select_spark_version` / `select_node_type` (databricks-sdk-py
    `mixins/compute.py`, ported from databricks-sdk-go `service/compute/spark_version.go` and
    `node_type.go`, which the provider calls) over the answers already fetched."""
    with _SDK_LOCK:
        load_sdk()
        from databricks.sdk.mixins.compute import ClustersExt
        from databricks.sdk.service import compute

    class Catalog:
        _node_sorting_tuple = staticmethod(ClustersExt._node_sorting_tuple)
        _should_node_be_skipped = staticmethod(ClustersExt._should_node_be_skipped)

        def spark_versions(self) -> Any:
            return compute.GetSparkVersionsResponse.from_dict(versions or {})

        def list_node_types(self) -> Any:
            return compute.ListNodeTypesResponse.from_dict(node_types or {})

    try:
        return str(getattr(ClustersExt, method)(Catalog(), **kwargs))
    except ValueError as exc:
        raise DataError(str(exc)) from None


class EmulatedDataSource(DataSource):
    TYPE: ClassVar[str]

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.TYPE.removeprefix("databricks_")

    @classmethod
    def get_schema(cls) -> Schema:
        return data_source_schema(cls.TYPE)

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        pass  # Terraform has checked the configuration against the schema

    def read(self, ctx: ReadDataContext, config: State) -> State | None:
        what = f"cannot read {self.get_name().replace('_', ' ')}"
        try:
            return {**config, **self.fetch(dict(config))}
        except DataError as exc:
            ctx.diagnostics.add_error(what, str(exc))
        except ApiError as exc:
            ctx.diagnostics.add_error(what, mask(exc.message))
        except Exception as exc:  # the provider's boundary, as reports_errors
            ctx.diagnostics.add_error(what, mask(f"{type(exc).__name__}: {exc}"))
        return None

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def api(self, method: str, path: str, **query: Any) -> dict[str, Any]:
        client = self.provider.client()
        return dict(client.api(method, path, query=query or None))


class SparkVersion(EmulatedDataSource):
    """clusters/data_spark_version.go: the SDK's `SelectSparkVersion` over `clusters/spark-versions`;
    `latest` defaults to true and `scala` to "2.1" (so 2.12 and 2.13 keys both match)."""

    TYPE = "databricks_spark_version"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        flags = ("long_term_support", "beta", "ml", "genomics", "gpu", "photon", "graviton")
        version = _select(
            "select_spark_version",
            self.api("GET", "/api/2.1/clusters/spark-versions"),
            None,
            latest=config.get("latest") is not False,
            scala=config.get("scala") or "2.1",
            spark_version=config.get("spark_version") or None,
            **{f: bool(config.get(f)) for f in flags},
        )
        return {"id": version, "latest": config.get("latest") is not False, "scala": config.get("scala") or "2.1"}


class NodeType(EmulatedDataSource):
    """clusters/data_node_type.go: the SDK's `Smallest` over `clusters/list-node-types`; when
    nothing matches, the cloud's default (`defaultSmallestNodeType`: Standard_D4ds_v5 on Azure)."""

    TYPE = "databricks_node_type"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        arguments = (
            "min_memory_gb",
            "gb_per_core",
            "min_cores",
            "min_gpus",
            "local_disk",
            "local_disk_min_size",
            "category",
            "photon_worker_capable",
            "photon_driver_capable",
            "is_io_cache_enabled",
            "support_port_forwarding",
        )
        request = {k: config[k] for k in arguments if config.get(k) not in (None, False, 0, "")}
        if config.get("arm") or config.get("graviton"):
            request["graviton"] = True
        answer = self.api("GET", "/api/2.1/clusters/list-node-types")
        try:
            node_type = _select("select_node_type", None, answer, **request)
        except DataError:
            node_type = "Standard_D4pds_v6" if request.get("graviton") else "Standard_D4ds_v5"
        return {"id": node_type}


class CurrentUser(EmulatedDataSource):
    """scim/data_current_user.go: SCIM `Me`; home, repos, alphanumeric and acl_principal_id derived."""

    TYPE = "databricks_current_user"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        me = self.provider.client().current_user()
        name = str(me.get("userName") or "")
        kind = "servicePrincipals" if _UUID.match(name) else "users"
        return {
            "id": me.get("id"),
            "user_name": name,
            "home": f"/Users/{name}",
            "repos": f"/Repos/{name}",
            "acl_principal_id": f"{kind}/{name}",
            "external_id": me.get("externalId"),
            "alphanumeric": _NON_ALPHANUMERIC.sub("_", name.split("@")[0]).lower(),
            "workspace_url": self.provider.client().host,
        }


class ClusterData(EmulatedDataSource):
    """clusters/data_cluster.go: by `cluster_name` (exactly one cluster of that name, from the
    full listing) or by `cluster_id` (`clusters/get`); `cluster_info` is the ClusterDetails."""

    TYPE = "databricks_cluster"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        client = self.provider.client()
        if config.get("cluster_name"):
            named = [c for c in client.list_clusters() if c.get("cluster_name") == config["cluster_name"]]
            if not named:
                raise DataError(f"there is no cluster with name '{config['cluster_name']}'")
            if len(named) > 1:
                raise DataError(f"there is more than one cluster with name '{config['cluster_name']}'")
            info = named[0]
        elif config.get("cluster_id"):
            info = client.get_cluster(config["cluster_id"])
        else:
            raise DataError("you need to specify either `cluster_name` or `cluster_id`")
        block = next(b for b in self.get_schema().block_types if b.type_name == "cluster_info")
        return {
            "id": info["cluster_id"],
            "cluster_id": info["cluster_id"],
            "cluster_name": info.get("cluster_name"),
            "cluster_info": from_api(_as_schema(block), {"cluster_info": info})["cluster_info"],
        }


def _as_schema(block: Any) -> Schema:
    return Schema(block_types=[block])


class Clusters(EmulatedDataSource):
    """clusters/data_clusters.go: ids of every listed cluster (`filter_by` passed to the API),
    narrowed to names containing `cluster_name_contains` (case-insensitive); id "_"."""

    TYPE = "databricks_clusters"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        filters = (config.get("filter_by") or [{}])[0] or {}
        listed = self.provider.client().list_clusters(
            pinned_only=bool(filters.get("is_pinned")), states=filters.get("cluster_states") or ()
        )
        if filters.get("policy_id"):
            listed = [c for c in listed if c.get("policy_id") == filters["policy_id"]]
        if filters.get("cluster_sources"):
            listed = [c for c in listed if c.get("cluster_source") in filters["cluster_sources"]]
        contains = str(config.get("cluster_name_contains") or "").lower()
        ids = [c["cluster_id"] for c in listed if not contains or contains in str(c.get("cluster_name", "")).lower()]
        return {"id": "_", "ids": ids}


class Group(EmulatedDataSource):
    """scim/data_group.go: the group named `display_name` (SCIM filter), its members split by
    kind (`$ref` Users/, ServicePrincipals/, Groups/) and its entitlements."""

    TYPE = "databricks_group"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        name = config["display_name"]
        found = self.api("GET", f"{SCIM}/Groups", filter=f'displayName eq "{name}"').get("Resources") or []
        if not found:
            raise DataError(f"cannot find group {name}")
        group = self.api("GET", f"{SCIM}/Groups/{found[0]['id']}")
        members: dict[str, list[str]] = {"Users": [], "ServicePrincipals": [], "Groups": []}
        for member in group.get("members") or []:
            members.setdefault(str(member.get("$ref", "")).split("/")[0], []).append(str(member["value"]))
        entitlements = {e.get("value") for e in group.get("entitlements") or []}
        return {
            "id": group["id"],
            "external_id": group.get("externalId"),
            "acl_principal_id": f"groups/{name}",
            "users": sorted(members["Users"]),
            "service_principals": sorted(members["ServicePrincipals"]),
            "child_groups": sorted(members["Groups"]),
            "members": sorted(members["Users"] + members["ServicePrincipals"] + members["Groups"]),
            "groups": sorted(str(g["value"]) for g in group.get("groups") or []),
            "instance_profiles": sorted(str(r["value"]) for r in group.get("roles") or []),
            "allow_cluster_create": "allow-cluster-create" in entitlements,
            "allow_instance_pool_create": "allow-instance-pool-create" in entitlements,
            "databricks_sql_access": "databricks-sql-access" in entitlements,
            "workspace_access": "workspace-access" in entitlements,
            "workspace_consume": "workspace-consume" in entitlements,
        }


class User(EmulatedDataSource):
    """scim/data_user.go: by `user_id` (SCIM get) or `user_name` (filter `userName eq`)."""

    TYPE = "databricks_user"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("user_id"):
            user = self.api("GET", f"{SCIM}/Users/{config['user_id']}")
        else:
            name = config.get("user_name") or ""
            found = self.api("GET", f"{SCIM}/Users", filter=f'userName eq "{name}"').get("Resources") or []
            if not found:
                raise DataError(f"cannot find user {name}")
            user = found[0]
        name = str(user.get("userName") or "")
        return {
            "id": user["id"],
            "user_id": user["id"],
            "user_name": name,
            "display_name": user.get("displayName"),
            "home": f"/Users/{name}",
            "repos": f"/Repos/{name}",
            "alphanumeric": _NON_ALPHANUMERIC.sub("_", name.split("@")[0]).lower(),
            "external_id": user.get("externalId"),
            "application_id": user.get("applicationId"),
            "acl_principal_id": f"users/{name}",
            "active": bool(user.get("active", True)),
        }


class ServicePrincipal(EmulatedDataSource):
    """scim/data_service_principal.go: by `application_id`, `scim_id` or `display_name` (SCIM
    filter); exactly one must match."""

    TYPE = "databricks_service_principal"

    def fetch(self, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("application_id"):
            query, missing = (
                f'applicationId eq "{config["application_id"]}"',
                (f"cannot find SP with an application ID {config['application_id']}"),
            )
        elif config.get("scim_id"):
            query, missing = f'id eq "{config["scim_id"]}"', f"cannot find SP with an ID {config['scim_id']}"
        elif config.get("display_name"):
            query, missing = (
                f'displayName eq "{config["display_name"]}"',
                f"cannot find SP with name {config['display_name']}",
            )
        else:
            raise DataError("please specify either application_id, display_name, or scim_id")
        found = self.api("GET", f"{SCIM}/ServicePrincipals", filter=query).get("Resources") or []
        if not found:
            raise DataError(missing)
        if len(found) > 1:
            raise DataError(f"there are {len(found)} Service Principals with name {config.get('display_name')}")
        sp = found[0]
        app_id = sp.get("applicationId")
        return {
            "id": sp["id"],
            "sp_id": sp["id"],
            "scim_id": sp["id"],
            "application_id": app_id,
            "display_name": sp.get("displayName"),
            "home": f"/Users/{app_id}",
            "repos": f"/Repos/{app_id}",
            "acl_principal_id": f"servicePrincipals/{app_id}",
            "external_id": sp.get("externalId"),
            "active": bool(sp.get("active", True)),
        }


DATA_SOURCES: list[type[DataSource]] = [
    SparkVersion,
    NodeType,
    CurrentUser,
    ClusterData,
    Clusters,
    Group,
    User,
    ServicePrincipal,
]
