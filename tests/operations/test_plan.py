"""provisioner.operations.plan on its own, called with typed parameters as `provision plan` calls it:
the in-process sandbox and the real terraform binary."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from provisioner.databricks import identity
from provisioner.errors import ConfigError, ExitCode
from provisioner.operations.plan import PlanRequest, plan_environment
from provisioner.run.context import RunContext
from tests.helpers.project import Project, applied, held_until_served, in_process


def test_a_plan_is_saved_where_asked_and_reported(ctx: RunContext, out: io.StringIO, tmp_path: Path) -> None:
    (env,) = ctx.config.select()
    plan_file = tmp_path / "named.tfplan"
    result = plan_environment(ctx, env, ctx.console, PlanRequest(out=plan_file))
    assert (result.env, result.code) == ("default", ExitCode.CHANGES)
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600  # it holds the token
    assert f"default: changes planned; saved plan {plan_file}" in out.getvalue()
    assert not (env.root_dir / ".terraform" / "dlz-provisioner.tfplan").exists()


def test_a_failed_environment_is_a_result_and_its_summary_names_it(
    project: Project, out: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config["terraform"]["backend"] = {"type": "pg"}
    project.write_config()
    monkeypatch.delenv("PG_CONN_STR", raising=False)
    summary = tmp_path / "plan-default.json"
    with in_process(project, monkeypatch, out) as ctx:
        (env,) = ctx.config.select()
        result = plan_environment(ctx, env, ctx.console, PlanRequest(summary=summary))
        assert result.code is ExitCode.ERROR
        assert result.message.startswith("PG_CONN_STR") or "PG_CONN_STR" in result.message
        doc = json.loads(summary.read_text())
        assert (doc["environment"], doc["status"]) == ("default", "failed") and "PG_CONN_STR" in doc["error"]
        with pytest.raises(ConfigError, match="PG_CONN_STR"):  # alone, the error is the command's
            plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)


def test_the_scope_read_beside_the_plan_does_not_wait_for_the_identity_proof(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """The proof (SCIM Me) answers only once the workspace has served the scope's key listing
    (or after 20 s): a plan whose scope check read only after the proof would find it unserved."""
    applied(project, copy_allowed=False)  # initialised in place: the plan ahead runs
    seen = held_until_served(monkeypatch, project.dir / "trace.jsonl", "/secrets/list", identity, "prove")
    with in_process(project, monkeypatch, out) as ctx:
        (env,) = ctx.config.select()
        result = plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
    assert seen == [True]
    assert result.code is ExitCode.NO_CHANGES, out.getvalue()
    assert "holds AEP's current token" in out.getvalue()
