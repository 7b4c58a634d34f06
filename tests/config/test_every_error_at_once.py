"""Every problem in provision.yaml in one run, through the CLI: a line each (file:line, key path,
what is wrong — the fix), in file order, exit 1, nothing rendered and no network call (the
sandbox's request journal stays empty). What the config alone decides — a `fs.azure.sas.*`
Spark entry the tool manages — is one of them, refused at load instead of after the AEP call.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.project import Project

# Mistakes planted so the checks meet them in another order than the file has them: the
# cluster rules run after the schema, the secret check before both.
CONFIG = """\
aep:
  org_id: not-an-org
  client_id: 0123456789abcdef0123456789abcdef
  sandbox: prod
databricks:
  host: https://adb-1234567890123456.7.azuredatabricks.net
sas:
  mode: file
clusters:
  - name: aep-ingest
    spark_version: 15.4.x-scala2.12
    node_type_id: Standard_DS3_v2
    num_workers: 1
    spark_conf:
      fs.azure.sas.dlz-databricks-container.acct.blob.core.windows.net: "{{secrets/aep-dlz/dlz-sas-token}}"
    colour: blue
  - name: aep-explore
    spark_version: 15.4.x-scala2.12
    autoscale:
      min_workers: 5
      max_workers: 2
    password: hunter2
"""


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _run(project: Project, *args: str) -> tuple[int, list[str], Path]:
    trace = project.dir / "journal.jsonl"
    done = project.run(*args, env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))
    return done.returncode, _errors(done.stderr), trace


def test_every_mistake_is_reported_at_once_in_file_order(project: Project) -> None:
    project.config_path.write_text(CONFIG, encoding="utf-8")
    code, lines, trace = _run(project, "plan")
    assert code == 1
    path = re.escape(str(project.config_path))
    found = [re.fullmatch(rf"error: {path}:(\d+): (\S+): (.+)", line) for line in lines]
    assert all(found), lines
    where = [(int(m.group(1)), m.group(2)) for m in found if m]
    assert where == [
        (2, "aep.org_id"),
        (8, "sas.mode"),
        (15, "clusters[0].spark_conf.fs.azure.sas.dlz-databricks-container.acct.blob.core.windows.net"),
        (16, "clusters[0].colour"),
        (19, "clusters[1].autoscale"),
        (22, "clusters[1].password"),
    ]
    # Each says what is wrong and the fix.
    assert all(" — " in line for line in lines), lines
    assert "hunter2" not in "\n".join(lines)
    assert not project.root().exists() and not trace.exists()


def test_a_managed_sas_entry_is_a_config_error_before_any_network_call(project: Project) -> None:
    project.config["clusters"][0]["spark_conf"]["fs.azure.sas.dlz-databricks-container.sndbx.blob.core.windows.net"] = (
        "{{secrets/other/key}}"
    )
    project.write_config()
    for command in (("render",), ("plan",), ("apply", "--auto-approve")):
        code, lines, trace = _run(project, *command)
        assert code == 1
        (line,) = lines
        assert line.startswith(f"error: {project.config_path}:")
        assert "clusters[0].spark_conf.fs.azure.sas.dlz-databricks-container" in line
        assert "managed by dlz-provisioner" in line and "remove this key" in line
        assert "templates/" not in line and "rendering failed" not in line
        assert not trace.exists(), f"{command}: the sandbox was called before the config was refused"
    assert not project.root().exists()


def test_duplicate_keys_are_all_reported(project: Project) -> None:
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text + "sas:\n  mode: inline\nterraform:\n  dir: x\n", encoding="utf-8")
    code, lines, _ = _run(project, "plan")
    assert code == 1
    assert [re.sub(r".*duplicate key '(\w+)'.*", r"\1", line) for line in lines] == ["sas", "terraform"]
