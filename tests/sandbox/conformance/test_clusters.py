"""Clusters: databricks-sdk-py `tests/integration/test_clusters.py`, databricks-sdk-go
`internal/clusters_test.go`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from databricks.sdk import WorkspaceClient, errors
from databricks.sdk.core import DatabricksError
from databricks.sdk.service.compute import EventType, State


def test_smallest_node_type(w: WorkspaceClient) -> None:
    """sdk-py test_smallest_node_type."""
    assert w.clusters.select_node_type(local_disk=True) is not None


def test_latest_runtime(w: WorkspaceClient) -> None:
    """sdk-py test_latest_runtime; sdk-go TestAccClustersCreateFailsWithTimeoutNoTranspile's
    `SparkVersions(ctx).Select(Latest, LongTermSupport)`."""
    assert w.clusters.select_spark_version(long_term_support=True) is not None
    assert w.clusters.select_spark_version(long_term_support=True, latest=True).endswith("-scala2.12")


def test_cluster_events(w: WorkspaceClient, default_cluster: str) -> None:
    """sdk-py test_cluster_events: STARTING or TERMINATING events of TEST_DEFAULT_CLUSTER_ID."""
    count = sum(1 for _ in w.clusters.events(default_cluster, event_types=[EventType.STARTING, EventType.TERMINATING]))
    assert count > 0


def test_ensure_cluster_is_running(w: WorkspaceClient, default_cluster: str) -> None:
    """sdk-py test_ensure_cluster_is_running, from RUNNING and from TERMINATED."""
    w.clusters.ensure_cluster_is_running(default_cluster)
    w.clusters.delete_and_wait(default_cluster)
    w.clusters.ensure_cluster_is_running(default_cluster)
    assert w.clusters.get(default_cluster).state == State.RUNNING


def test_create_cluster(w: WorkspaceClient, random: Callable[[int], str]) -> None:
    """sdk-py test_create_cluster, with a node type in place of TEST_INSTANCE_POOL_ID (instance
    pools are not emulated)."""
    info = w.clusters.create(
        cluster_name=f"databricks-sdk-py-{random(8)}",
        spark_version=w.clusters.select_spark_version(long_term_support=True),
        node_type_id=w.clusters.select_node_type(local_disk=True),
        autotermination_minutes=10,
        num_workers=1,
    ).result()
    assert info.state == State.RUNNING


def test_error_unmarshall(w: WorkspaceClient) -> None:
    """sdk-py test_error_unmarshall; sdk-go TestAccClustersGetCorrectErrorMessageNoTranspile
    (`ErrResourceDoesNotExist`: the SDKs' error override for clusters/get, which matches the path
    `/api/2.x/clusters/get` — so only at a URL without a path prefix)."""
    with pytest.raises(DatabricksError) as exc_info:
        w.clusters.get("123__non_existing__")
    err = exc_info.value
    assert "Cluster 123__non_existing__ does not exist" in str(err)
    assert err.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(err, errors.ResourceDoesNotExist)
