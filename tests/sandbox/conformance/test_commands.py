"""Command execution: databricks-sdk-py `tests/integration/test_commands.py`, databricks-sdk-go
`internal/commands_test.go`."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import DatabricksError
from databricks.sdk.service.compute import CommandStatus, Language, ResultType


def test_error_unmarshall(w: WorkspaceClient) -> None:
    """sdk-py test_error_unmarshall: API 1.2's own error shape, no error_code."""
    with pytest.raises(DatabricksError) as exc_info:
        w.command_execution.execute(cluster_id="__non_existing__")
    err = exc_info.value
    assert "requirement failed: missing contextId" in str(err)
    assert err.error_code is None


def test_commands_direct_usage(w: WorkspaceClient, default_cluster: str) -> None:
    """sdk-go TestAccCommandsDirectUsage (and TestAccCommands): `print(1)` answers "1", `1/0`
    an error the SDK reads as "ZeroDivisionError: division by zero"."""
    w.clusters.ensure_cluster_is_running(default_cluster)
    context = w.command_execution.create_and_wait(cluster_id=default_cluster, language=Language.PYTHON)
    assert context.id is not None
    try:
        text = w.command_execution.execute_and_wait(
            cluster_id=default_cluster, context_id=context.id, language=Language.PYTHON, command="print(1)"
        )
        assert text.status == CommandStatus.FINISHED
        assert text.results is not None and text.results.data == "1"
        failing = w.command_execution.execute_and_wait(
            cluster_id=default_cluster, context_id=context.id, language=Language.PYTHON, command="1/0"
        )
        assert failing.results is not None and failing.results.result_type == ResultType.ERROR
        # databricks-sdk-go service/compute/ext_results.go Error(): tags stripped, HTML unescaped.
        summary = (failing.results.summary or "").replace("<span class='ansi-red-fg'>", "").replace("</span>", "")
        assert summary == "ZeroDivisionError: division by zero"
    finally:
        w.command_execution.destroy(cluster_id=default_cluster, context_id=context.id)
