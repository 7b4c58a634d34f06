"""SandboxStore without a server: persistence, locking, lazy clocks, knobs, the oracle."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path
from urllib.parse import unquote

import pytest

from provisioner.sandbox import HOSTS_ENV, Sandbox
from provisioner.sandbox.store import DatabricksError, SandboxStore, new_sas_token, storage_account_name
from tests.helpers.config import WORKSPACE_HOST, WORKSPACE_KEY
from tests.helpers.sandbox import EMULATOR_ORG_ID

ROOT = Path(__file__).resolve().parents[2]


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _dlz_key(body: dict[str, str]) -> str:
    return f"fs.azure.sas.{body['containerName']}.{body['storageAccountName']}.blob.core.windows.net"


def test_storage_account_name_is_a_stable_golden() -> None:
    # Goldens and users' configs embed this name: changing the derivation breaks them.
    assert storage_account_name("1234567890ABCDEF12345678@AdobeOrg", "prod") == "sndbxdtln4m1vg6xw6s1wkhg"
    assert storage_account_name("1234567890ABCDEF12345678@AdobeOrg", "dev") != "sndbxdtln4m1vg6xw6s1wkhg"


def test_sas_tokens_always_carry_url_escapes() -> None:
    tokens = {new_sas_token() for _ in range(300)}
    assert len(tokens) == 300
    for token in tokens:
        sig = token.split("&sig=")[1]
        assert "%2F" in sig and "%2B" in sig and sig.endswith("%3D")
        assert len(unquote(sig)) == 44
        assert "%" not in token.split("&sig=")[0]


def test_state_persists_across_instances_with_mode_0600(tmp_path: Path) -> None:
    first = SandboxStore(tmp_path)
    body = first.dlz_credentials(EMULATOR_ORG_ID, "prod")
    cluster = first.add_cluster(WORKSPACE_KEY, {"spark_conf": {_dlz_key(body): body["SASToken"]}})
    first.set_faults(aep_status_429=3)
    second = SandboxStore(tmp_path)
    assert second.dlz_credentials(EMULATOR_ORG_ID, "prod") == body
    assert second.dlz_access(WORKSPACE_KEY, cluster) is True
    assert second.faults()["aep.status_429"] == 3
    files = sorted(p.name for p in tmp_path.glob("state.db*"))
    assert files == ["state.db", "state.db-shm", "state.db-wal"]
    assert all(stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600 for name in files)
    with sqlite3.connect(tmp_path / "state.db") as db:  # on disk, not only in this process
        (root,) = db.execute("SELECT body FROM root").fetchone()
    assert body["SASToken"] in root


def test_another_process_sees_and_changes_the_same_state(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    body = store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    cluster = store.add_cluster(WORKSPACE_KEY, {"spark_conf": {_dlz_key(body): body["SASToken"]}})
    assert store.dlz_access(WORKSPACE_KEY, cluster) is True
    out = _run_python(f"""
        import json
        from pathlib import Path
        from provisioner.sandbox.store import SandboxStore
        s = SandboxStore(Path({str(tmp_path)!r}))
        assert s.dlz_access({WORKSPACE_KEY!r}, {cluster!r})
        s.refresh_dlz({EMULATOR_ORG_ID!r}, "prod")
        s.set_faults(**{{"workspace.fail": {{"clusters/edit": 1}}}})
        print(json.dumps(s.valid_tokens()))
    """)
    [token] = json.loads(out)
    assert token["SASToken"] != body["SASToken"]
    assert store.dlz_access(WORKSPACE_KEY, cluster) is False  # refreshed out of band: the oracle flips
    assert store.faults()["workspace.fail"] == {"clusters/edit": 1}


def test_dlz_access_of_many_clusters_in_one_read(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    body = store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    reaches = store.add_cluster(WORKSPACE_KEY, {"spark_conf": {_dlz_key(body): body["SASToken"]}})
    stopped = store.add_cluster(WORKSPACE_KEY, {"spark_conf": {_dlz_key(body): body["SASToken"]}}, state="TERMINATED")
    lacks = store.add_cluster(WORKSPACE_KEY)
    ids = [lacks, "0000-000000-missing0", reaches, stopped]
    assert store.dlz_access_many(WORKSPACE_KEY, ids) == {
        lacks: False,
        "0000-000000-missing0": False,
        reaches: True,
        stopped: False,
    }
    assert [store.dlz_access(WORKSPACE_KEY, cid) for cid in ids] == [False, False, True, False]


def test_concurrent_writers_from_threads_and_processes_lose_nothing(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    store.create_scope(WORKSPACE_KEY, "dlz")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            from pathlib import Path
            from provisioner.sandbox.store import SandboxStore
            s = SandboxStore(Path({str(tmp_path)!r}))
            for i in range(30):
                s.put_secret({WORKSPACE_KEY!r}, "dlz", f"proc-{{i}}", "v")
        """),
        ],
        cwd=ROOT,
    )

    def writer(n: int) -> None:
        mine = SandboxStore(tmp_path)
        for i in range(15):
            mine.put_secret(WORKSPACE_KEY, "dlz", f"thread-{n}-{i}", "v")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert child.wait(timeout=60) == 0
    assert len(store.list_secrets(WORKSPACE_KEY, "dlz")) == 30 + 3 * 15


def test_cluster_clock_advances_lazily_on_load(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path, cluster_start_seconds=0.2)
    cluster = store.create_cluster(WORKSPACE_KEY, {"spark_version": "15.4.x-scala2.12", "num_workers": 0})
    assert store.get_cluster(WORKSPACE_KEY, cluster)["state"] == "PENDING"  # type: ignore[index]
    time.sleep(0.25)
    # A different instance (as another process would) sees the same, advanced clock.
    assert SandboxStore(tmp_path).get_cluster(WORKSPACE_KEY, cluster)["state"] == "RUNNING"  # type: ignore[index]


def test_start_seconds_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS", "2.5")
    assert SandboxStore(tmp_path).cluster_start_seconds == 2.5
    monkeypatch.delenv("PROVISION_SANDBOX_CLUSTER_START_SECONDS")
    assert SandboxStore(tmp_path).cluster_start_seconds == 0.3


def test_store_errors_are_databricks_errors(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    with pytest.raises(DatabricksError) as err:
        store.start_cluster(WORKSPACE_KEY, "0101-000000-missing")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert store.get_cluster(WORKSPACE_KEY, "0101-000000-missing") is None


def test_secret_value_changes_do_not_reach_a_running_cluster(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path, cluster_start_seconds=0.05)
    store.create_scope(WORKSPACE_KEY, "dlz")
    store.put_secret(WORKSPACE_KEY, "dlz", "sas", "first")
    cluster = store.add_cluster(WORKSPACE_KEY, {"spark_conf": {"k": "{{secrets/dlz/sas}}"}})
    restarted = store.get_cluster(WORKSPACE_KEY, cluster)["last_restarted_time"]  # type: ignore[index]
    time.sleep(0.01)
    store.put_secret(WORKSPACE_KEY, "dlz", "sas", "second")
    [secret] = store.list_secrets(WORKSPACE_KEY, "dlz")
    assert secret == {"key": "sas", "last_updated_timestamp": secret["last_updated_timestamp"]}
    # What a "restart needed?" check compares: the secret is newer than the last start.
    assert secret["last_updated_timestamp"] > restarted
    assert store.effective_spark_conf(WORKSPACE_KEY, cluster) == {"k": "first"}
    store.restart_cluster(WORKSPACE_KEY, cluster)
    assert store.effective_spark_conf(WORKSPACE_KEY, cluster) == {"k": "second"}


def test_put_overwrites_in_place_and_a_key_vault_scope_refuses_it(tmp_path: Path) -> None:
    """SDK `SecretsAPI.put_secret`: overwrites an existing value; BAD_REQUEST on an Azure
    KeyVault-backed scope (whose secrets are read-only through Databricks)."""
    store = SandboxStore(tmp_path)
    store.create_scope(WORKSPACE_KEY, "dlz")
    store.put_secret(WORKSPACE_KEY, "dlz", "sas", "first")
    store.put_secret(WORKSPACE_KEY, "dlz", "sas", "second")
    assert store.secret_value(WORKSPACE_KEY, "dlz", "sas") == "second"
    assert [s["key"] for s in store.list_secrets(WORKSPACE_KEY, "dlz")] == ["sas"]
    store.create_scope(WORKSPACE_KEY, "kv", "AZURE_KEYVAULT")
    assert {"name": "kv", "backend_type": "AZURE_KEYVAULT"} in store.list_scopes(WORKSPACE_KEY)
    with pytest.raises(DatabricksError) as err:
        store.put_secret(WORKSPACE_KEY, "kv", "sas", "x")
    assert (err.value.status, err.value.error_code) == (400, "BAD_REQUEST")
    with pytest.raises(DatabricksError) as err:
        store.create_scope(WORKSPACE_KEY, "other", "HASHICORP_VAULT")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_faults_validate_names_and_reset(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    with pytest.raises(ValueError, match="unknown fault"):
        store.set_faults(aep_status_430=1)
    store.set_faults(aep_status_5xx=2, aep_latency_ms=5)
    store.set_faults(aep_status_5xx_code=502)
    faults = store.faults()
    assert (faults["aep.status_5xx"], faults["aep.status_5xx_code"], faults["aep.latency_ms"]) == (2, 502, 5)
    first, second, third = (store.take_aep_fault() for _ in range(3))
    assert (first.status, second.status, third.status) == (502, 502, None)
    assert third.latency_ms == 5
    store.clear_faults()
    assert store.faults()["aep.latency_ms"] == 0


def test_reset_wipes_everything(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path)
    store.dlz_credentials(EMULATOR_ORG_ID, "prod")
    store.add_cluster(WORKSPACE_KEY)
    store.create_policy(WORKSPACE_KEY, "p", {"spark_conf.a": {"type": "fixed", "value": "b"}})
    store.reset()
    assert store.valid_tokens() == []
    assert store.list_clusters(WORKSPACE_KEY) == []
    assert store.connections() == []
    assert store.list_policies(WORKSPACE_KEY) == []
    assert store.faults()["aep.status_429"] == 0


def test_terraform_env_adds_hosts_to_the_mirror_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def build_mirror(state_dir: Path) -> dict[str, str]:
        calls.append(state_dir)
        return {
            "TF_CLI_CONFIG_FILE": str(state_dir / "x.tfrc"),
            "CHECKPOINT_DISABLE": "1",
            "PROVISION_SANDBOX_PYTHON": sys.executable,
        }

    fake = types.ModuleType("provisioner.sandbox.mirror")
    fake.build_mirror = build_mirror  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "provisioner.sandbox.mirror", fake)
    with Sandbox(tmp_path, workspace_hosts=[WORKSPACE_HOST + "/"], client_id="c", org_id=EMULATOR_ORG_ID) as sb:
        env = sb.terraform_env()
        sb.terraform_env()
        hosts = json.loads(env[HOSTS_ENV])
        assert hosts == {WORKSPACE_HOST: f"{sb.base_url}/ws/{WORKSPACE_KEY}"}
        assert env["CHECKPOINT_DISABLE"] == "1"
        assert calls == [tmp_path]


def test_importing_the_package_stays_cheap() -> None:
    out = _run_python("""
        import sys
        import provisioner.sandbox
        heavy = [m for m in ("provisioner.sandbox.store", "provisioner.sandbox.server", "http.server",
                             "requests", "provisioner.sandbox.mirror") if m in sys.modules]
        print(heavy)
    """)
    assert out.strip() == "[]"


def test_admin_state_redacts_secrets(tmp_path: Path) -> None:
    import requests

    with Sandbox(tmp_path, workspace_hosts=[WORKSPACE_HOST], client_id="c", org_id=EMULATOR_ORG_ID) as sb:
        body = sb.store.dlz_credentials(EMULATOR_ORG_ID, "prod")
        sb.store.create_scope(WORKSPACE_KEY, "dlz")
        sb.store.put_secret(WORKSPACE_KEY, "dlz", "sas", body["SASToken"])
        sb.store.add_cluster(WORKSPACE_KEY, {"spark_conf": {_dlz_key(body): body["SASToken"]}})
        text = requests.get(f"{sb.base_url}/_sandbox/state", timeout=5).text
    sig = body["SASToken"].split("&sig=")[1]
    assert sig not in text
    assert "sig=***" in text
