"""The child's environment is built explicitly: nothing inherited can change what Terraform runs."""

from __future__ import annotations

from provisioner.secret import Secret
from provisioner.terraform.environment import build_child_env


def test_drops_flags_variables_and_workspace_with_a_warning() -> None:
    warnings: list[str] = []
    child = build_child_env(
        {
            "PATH": "/bin",
            "TF_CLI_ARGS_plan": "-destroy",
            "TF_VAR_dlz_sas_token": "evil",
            "TF_WORKSPACE": "x",
            "TF_LOG": "trace",
            "HOME": "/root",
        },
        warn=warnings.append,
    )
    assert child.values["PATH"] == "/bin" and child.values["HOME"] == "/root"
    for key in ("TF_CLI_ARGS_plan", "TF_VAR_dlz_sas_token", "TF_WORKSPACE", "TF_LOG"):
        assert key not in child.values
    assert child.values["TF_IN_AUTOMATION"] == "1" and child.values["TF_INPUT"] == "0"
    assert any("TF_CLI_ARGS_plan, TF_VAR_dlz_sas_token, TF_WORKSPACE" in w for w in warnings)
    assert any("TF_LOG" in w and "--debug" in w for w in warnings)


def test_debug_passes_tf_log_with_a_secrets_warning() -> None:
    warnings: list[str] = []
    child = build_child_env({"TF_LOG": "trace", "TF_LOG_PATH": "/tmp/x"}, debug=True, warn=warnings.append)
    assert child.values["TF_LOG"] == "trace" and child.values["TF_LOG_PATH"] == "/tmp/x"
    assert any("may contain secrets" in w for w in warnings)


def test_secrets_enter_only_as_environment_variables() -> None:
    sas = Secret("sv=1&sig=abcdefgh%3D")
    pat = Secret("dapi0123456789abcdef")
    child = build_child_env({}, variables={"dlz_sas_token": sas}, secret_env={"DATABRICKS_TOKEN": pat})
    assert child.values["TF_VAR_dlz_sas_token"] == sas.reveal()
    assert child.values["DATABRICKS_TOKEN"] == pat.reveal()
    assert "abcdefgh" not in repr(child)
