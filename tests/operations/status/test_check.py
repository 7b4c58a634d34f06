"""provisioner/operations/status/check.py in-process: what `status` waits for, and which error wins when the
parallel reads and the identity's proof fail together."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pytest

from provisioner.config.model import Environment
from provisioner.databricks import identity
from provisioner.errors import ConfigError
from provisioner.operations.status.check import check_status
from tests.helpers.project import Project, applied, held_until_served, in_process


def test_cluster_reads_do_not_wait_for_the_identity_proof(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """The proof (SCIM Me) answers only once the workspace has served the clusters' list (or
    after 20 s): a status that read only after the proof would find none served."""
    applied(project)
    seen = held_until_served(monkeypatch, project.dir / "trace.jsonl", "/clusters/list", identity, "prove")
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        status = check_status(ctx, env)
    assert seen == [True]
    assert {c["state"] for c in status.document["clusters"]} == {"RUNNING"}
    assert status.document["databricksIdentity"]["authType"] == "pat"


def test_a_refused_login_is_the_error_not_the_cluster_reads_it_also_fails(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    applied(project)
    with in_process(project, monkeypatch, out) as ctx:
        project.store().revoke_pats()
        env = ctx.config.select()[0]
        with pytest.raises(ConfigError) as err:
            check_status(ctx, env)
    message = str(err.value)
    assert "pat authentication failed" in message and "refused" in message, message
    assert "cannot read" not in message and "\n" not in message


def test_the_sandbox_oracle_is_asked_once_for_every_cluster(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """Each question to the sandbox's DLZ oracle reads its whole state twice: asked once per
    cluster, a 200-cluster status spent ~30 s there. Now one question answers every cluster."""
    applied(project)
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        asked: list[int] = []
        dlz_access = ctx.target.dlz_access

        def counted(e: Environment, ids: Mapping[str, str]) -> dict[str, bool | None] | None:
            asked.append(len(ids))
            return dlz_access(e, ids)

        monkeypatch.setattr(ctx.target, "dlz_access", counted)
        status = check_status(ctx, env)
    running = [c for c in status.document["clusters"] if c["state"] == "RUNNING"]
    assert len(running) >= 2 and all(c["dlzAccess"] for c in running)
    assert asked == [0, len(running)]  # "is there an oracle?", then every cluster at once
