"""The workflow steps commands compose (config → credentials → render → terraform), each on its
own, against the sandbox and the real terraform binary."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from provisioner.config.model import load_config
from provisioner.console import Console
from provisioner.errors import ConfigError, ExitCode
from provisioner.run.context import (
    RunContext,
    default_plan_file,
    fetch_credentials,
    plan_env,
    read_env_state,
    render_env,
)
from provisioner.run.target import RealTarget, plugin_cache_dir
from provisioner.terraform import Applied, PlanOptions, plan_and_apply
from tests.helpers.config import AEP_SECRET, DATABRICKS_PAT, IDENTITY
from tests.helpers.project import Project


def test_render_writes_once_and_says_so(ctx: RunContext, project: Project, out: io.StringIO) -> None:
    (env,) = ctx.config.select()
    creds = fetch_credentials(ctx, env)
    assert creds.spark_conf_key.startswith(f"fs.azure.sas.{creds.container_name}.")
    render_env(ctx, env, creds)
    assert "rendered" in out.getvalue() and (project.root() / "clusters.tf").is_file()
    before = out.getvalue()
    render_env(ctx, env, creds)  # unchanged: nothing written, nothing said
    assert out.getvalue() == before
    text = "".join(p.read_text() for p in project.root().glob("*.tf"))
    assert creds.sas_token.reveal() not in text


def test_state_of_a_root_never_rendered_is_empty_without_running_terraform(ctx: RunContext, project: Project) -> None:
    (env,) = ctx.config.select()
    state = read_env_state(ctx, env)
    assert state.clusters() == {} and state.resource("databricks_secret") is None
    assert not project.root().exists()


def test_plan_confirm_apply_and_read_state(ctx: RunContext, project: Project) -> None:
    (env,) = ctx.config.select()
    creds = fetch_credentials(ctx, env)
    render_env(ctx, env, creds)
    plan_file = default_plan_file(env)
    assert plan_env(ctx, env, creds, plan_file) is ExitCode.CHANGES
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600  # it holds the token
    runner = ctx.runner(env, creds.sas_token)

    asked: list[bool] = []

    def decline() -> bool:
        asked.append(True)
        return False

    # Declined: nothing applied, and the plan (with the token in it) is gone all the same.
    assert plan_and_apply(runner, PlanOptions(out=plan_file), decline) is Applied.DECLINED
    assert asked and not plan_file.exists()
    assert read_env_state(ctx, env).clusters() == {}

    assert plan_and_apply(runner, PlanOptions(out=plan_file), lambda: True) is Applied.APPLIED
    assert not plan_file.exists()
    state = read_env_state(ctx, env)
    assert set(state.clusters()) == {"aep-ingest", "aep-explore"}
    cluster = state.resource("databricks_cluster", "aep-ingest")
    assert cluster is not None and cluster["spark_conf"][creds.spark_conf_key] == creds.sas_token.reveal()
    assert "sig=" not in repr(state)

    asked.clear()
    assert plan_and_apply(runner, PlanOptions(out=plan_file), decline) is Applied.NO_CHANGES
    assert not asked and not plan_file.exists()  # nothing to confirm when nothing changes


def test_terraform_gets_only_the_secrets_it_needs(project: Project) -> None:
    config = load_config(project.config_path, environ={})
    (env,) = config.select()
    environ = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(project.dir / "home")}
    environ |= {"AEP_CLIENT_SECRET": AEP_SECRET, "DATABRICKS_TOKEN": DATABRICKS_PAT, "TF_VAR_x": "1"}
    ctx = RunContext(config, Console(io.StringIO(), io.StringIO(), color=False), environ, RealTarget(environ))
    child = ctx.runner(env, sas=None, identity=IDENTITY).env.values
    assert "AEP_CLIENT_SECRET" not in child and "TF_VAR_x" not in child
    assert child["DATABRICKS_TOKEN"] == DATABRICKS_PAT
    assert "TF_VAR_dlz_sas_token" not in child  # only with a token to hand over
    assert child["DATABRICKS_AUTH_TYPE"] == IDENTITY.auth_type  # the run's identity, pinned
    assert child["TF_PLUGIN_CACHE_DIR"] == str(project.dir / "home" / ".cache" / "dlz-provisioner" / "plugins")


def test_a_pg_backend_needs_its_connection_string_first(project: Project) -> None:
    project.config["terraform"]["backend"] = {"type": "pg"}
    project.write_config()
    config = load_config(project.config_path, environ={})
    environ = {"PATH": "/usr/bin"}
    ctx = RunContext(config, Console(io.StringIO(), io.StringIO(), color=False), environ, RealTarget(environ))
    with pytest.raises(ConfigError, match="PG_CONN_STR"):
        ctx.runner(config.select()[0], sas=None, identity=IDENTITY)


def test_plugin_cache_dir_precedence(tmp_path: Path) -> None:
    assert plugin_cache_dir({"TF_PLUGIN_CACHE_DIR": "/x", "HOME": str(tmp_path)}) == Path("/x")
    xdg = plugin_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)})
    assert xdg == tmp_path / "xdg" / "dlz-provisioner" / "plugins" and xdg.is_dir()
    assert plugin_cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "dlz-provisioner" / "plugins"
