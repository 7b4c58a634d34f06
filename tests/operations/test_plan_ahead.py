"""provisioner/operations/plan_ahead.py through `plan` (in-process and CLI, real terraform, sandbox):
Terraform plans the root on disk while AEP answers, and that plan is used only when rendering
changed nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from provisioner.aep.client import AepClient
from provisioner.errors import ConfigError, ExitCode
from provisioner.operations.plan import PlanRequest, plan_environment
from provisioner.run.context import default_plan_file
from provisioner.terraform.process import CHILDREN
from tests.helpers.project import Project, applied, held_until_served, in_process

# Minutes on one worker: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.long


def _hold_aep_until_terraform_reads(
    monkeypatch: pytest.MonkeyPatch, trace: Path, call: str = "/clusters/get"
) -> list[bool]:
    """AEP's answer is held until the workspace has served `call` (Terraform's provider reads a
    cluster) or 30 s passed; the list says, per AEP call, whether it had. A read that starts
    only after the credentials never has."""
    return held_until_served(monkeypatch, trace, call, AepClient, "get_credentials", seconds=30)


def test_terraform_plans_while_aep_answers(project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO) -> None:
    applied(project, copy_allowed=False)  # the plan ahead needs the root initialised in place
    seen = _hold_aep_until_terraform_reads(monkeypatch, project.dir / "trace.jsonl")
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        result = plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
    assert seen == [True]
    assert result.code is ExitCode.NO_CHANGES, out.getvalue()
    # Its output was held back, then printed once.
    assert out.getvalue().count("Refreshing state...") == len(project.config["clusters"]) + 1, out.getvalue()


def test_the_secret_scope_is_read_while_aep_answers(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """The scope's checks and listing need no AEP token: they do not wait for the credentials."""
    applied(project, copy_allowed=False)  # the plan ahead needs the root initialised in place
    seen = _hold_aep_until_terraform_reads(monkeypatch, project.dir / "trace.jsonl", "/secrets/list")
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        result = plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
    assert seen == [True]
    assert result.code is ExitCode.NO_CHANGES, out.getvalue()
    assert "holds AEP's current token" in out.getvalue(), out.getvalue()  # judged once the token came


def test_a_changed_config_is_planned_again_not_the_root_on_disk(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """The plan ahead has read the old root by the time the credentials come; rendering the
    changed config rewrites clusters.tf, so that plan is stopped and the new root planned."""
    applied(project, copy_allowed=False)  # the plan ahead needs the root initialised in place
    project.config["clusters"][0]["autotermination_minutes"] = 45
    project.write_config()
    seen = _hold_aep_until_terraform_reads(monkeypatch, project.dir / "trace.jsonl")
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        result = plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
    text = out.getvalue()
    assert seen == [True]
    assert result.code is ExitCode.CHANGES, text
    assert "autotermination_minutes = 60 -> 45" in text and "1 to change" in text, text
    assert text.count("Plan:") == 1, text  # the plan ahead printed nothing


def test_a_refused_login_stops_the_plan_ahead_and_leaves_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    applied(project)
    with in_process(project, monkeypatch, out) as ctx:
        project.store().revoke_pats()
        env = ctx.config.select()[0]
        with pytest.raises(ConfigError) as err:
            plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
        assert "authentication failed" in str(err.value)
        assert not CHILDREN._procs  # no terraform left running
        assert not default_plan_file(env).exists()
        assert not (env.root_dir / ".terraform.tfstate.lock.info").exists()
    assert "Refreshing state" not in out.getvalue()


def test_a_wrong_auth_guess_costs_a_plan_not_a_wrong_result(
    project: Project, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    """Terraform started with an auth pin other than the one databricks-sdk resolves (here a
    forced wrong guess: OAuth M2M without a client) is stopped and the plan made again."""
    from provisioner.databricks import identity

    applied(project)
    monkeypatch.setattr(identity, "predicted_auth_type", lambda *args: "oauth-m2m")
    with in_process(project, monkeypatch, out) as ctx:
        env = ctx.config.select()[0]
        result = plan_environment(ctx, env, ctx.console, PlanRequest(), raise_errors=True)
    assert result.code is ExitCode.NO_CHANGES, out.getvalue()
    assert "oauth" not in out.getvalue().lower(), out.getvalue()
