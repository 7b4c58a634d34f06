"""provisioner.operations.apply on its own, called with typed parameters as `provision apply` calls it:
the in-process sandbox and the real terraform binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import ProvisionError
from provisioner.operations.apply import ApplyRequest, SavedPlan, apply_environment
from provisioner.operations.plan import PlanRequest, plan_environment
from provisioner.run.context import RunContext, read_env_state
from provisioner.terraform import Applied
from tests.helpers.config import ORG, SANDBOX
from tests.helpers.project import Project, access


def test_without_a_terminal_nothing_is_done(ctx: RunContext, project: Project) -> None:
    (env,) = ctx.config.select()
    assert not ctx.interactive
    with pytest.raises(ProvisionError, match="without a terminal to confirm on"):
        apply_environment(ctx, env, ctx.console, ApplyRequest(auto_approve=False, timeout=60))
    assert not project.root().exists()  # refused before rendering anything


def test_apply_then_nothing_to_apply(ctx: RunContext, project: Project) -> None:
    (env,) = ctx.config.select()
    req = ApplyRequest(auto_approve=True, timeout=60)
    assert apply_environment(ctx, env, ctx.console, req).applied is Applied.APPLIED
    assert set(read_env_state(ctx, env).clusters()) == {"aep-ingest", "aep-explore"}
    assert access(project) == {"aep-ingest": True, "aep-explore": True}  # on AEP's current token
    assert apply_environment(ctx, env, ctx.console, req).applied is Applied.NO_CHANGES
    assert not list((project.root() / ".terraform").glob("apply-*.tfplan"))  # no plan (with its token) left


def test_a_saved_plan_made_with_a_replaced_token_is_refused(ctx: RunContext, project: Project, tmp_path: Path) -> None:
    (env,) = ctx.config.select()
    plan_file = tmp_path / "p.tfplan"
    plan_environment(ctx, env, ctx.console, PlanRequest(out=plan_file), raise_errors=True)
    project.store().refresh_dlz(ORG, SANDBOX)  # AEP issues a new token: the plan's is revoked
    req = ApplyRequest(auto_approve=True, timeout=60, saved=SavedPlan(plan_file, "p.tfplan"))
    with pytest.raises(ProvisionError, match=r"^p\.tfplan: this plan was made with a SAS token AEP no longer honours"):
        apply_environment(ctx, env, ctx.console, req)
    assert read_env_state(ctx, env).clusters() == {}  # nothing applied
