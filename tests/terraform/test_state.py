"""A local backend's state read from its file is what `terraform state pull` prints, for every
way Terraform 1.11 places that file (real terraform, roots of its built-in `terraform_data`
resource: no provider to download); where only Terraform can read it, the reader says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.terraform.state import TerraformState, local_state_path, read_local_state, restore_torn_local_state
from tests.helpers.processes import wait_until

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs terraform")


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", **extra}


def _terraform(root: Path, env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["terraform", *args], cwd=root, env=env, capture_output=True, text=True, check=False)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _root(tmp_path: Path, backend: str = "{}", names: tuple[str, ...] = ("a", "b")) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    resources = "".join(f'resource "terraform_data" "{n}" {{\n  input = "{n}"\n}}\n' for n in names)
    (root / "main.tf").write_text(f'terraform {{\n  backend "local" {backend}\n}}\n{resources}')
    return root


def _pulled(root: Path, env: dict[str, str]) -> dict[str, Any]:
    out = _terraform(root, env, "state", "pull").stdout
    return json.loads(out) if out.strip() else {}


def _read(root: Path, env: dict[str, str]) -> TerraformState:
    read = read_local_state(root, env)
    assert read is not None, "read from the file, not left to Terraform"
    return read


def _same(root: Path, env: dict[str, str]) -> None:
    read = _read(root, env)
    pulled = _pulled(root, env)
    assert repr(read) == repr(TerraformState(pulled))
    assert sorted(read.addresses()) == sorted(TerraformState(pulled).addresses())
    assert read.instances("terraform_data") == TerraformState(pulled).instances("terraform_data")


def test_default_workspace_and_a_configured_path(tmp_path: Path) -> None:
    env = _environ(tmp_path)
    root = _root(tmp_path, '{\n    path = "states/here.tfstate"\n  }')
    _terraform(root, env, "init")
    assert _read(root, env).addresses() == []
    _terraform(root, env, "apply", "-auto-approve")
    assert local_state_path(root, env) == root / "states" / "here.tfstate"
    _same(root, env)
    assert sorted(_read(root, env).addresses()) == ["terraform_data.a", "terraform_data.b"]


def test_a_selected_workspace_and_a_data_dir_of_its_own(tmp_path: Path) -> None:
    env = _environ(tmp_path, TF_DATA_DIR="elsewhere")
    root = _root(tmp_path, names=("only",))
    _terraform(root, env, "init")
    _terraform(root, env, "apply", "-auto-approve")
    _terraform(root, env, "workspace", "new", "blue")  # writes <data dir>/environment
    _terraform(root, env, "apply", "-auto-approve")
    assert local_state_path(root, env) == root / "terraform.tfstate.d" / "blue" / "terraform.tfstate"
    _same(root, env)
    # TF_WORKSPACE wins over the environment file, as in Terraform.
    default = {**env, "TF_WORKSPACE": "default"}
    assert local_state_path(root, default) == root / "terraform.tfstate"
    _same(root, default)


def test_no_state_yet_and_an_empty_file_are_no_state(tmp_path: Path) -> None:
    env = _environ(tmp_path)
    root = _root(tmp_path)
    _terraform(root, env, "init")
    assert _pulled(root, env) == {}
    assert _read(root, env).addresses() == []
    (root / "terraform.tfstate").write_text("")  # what Terraform's lock leaves before it persists
    assert _pulled(root, env) == {}
    assert _read(root, env).addresses() == []


def test_what_only_terraform_can_read_is_left_to_it(tmp_path: Path) -> None:
    env = _environ(tmp_path)
    root = _root(tmp_path)
    assert read_local_state(root, env) is None  # not initialised: Terraform says what to do
    _terraform(root, env, "init")
    _terraform(root, env, "apply", "-auto-approve")
    state = root / "terraform.tfstate"
    whole = state.read_text()
    state.write_text(whole[: len(whole) // 2])  # torn
    assert read_local_state(root, env) is None
    assert _terraform(root, env, "state", "pull", ok=False).returncode != 0  # and Terraform names it
    older = {**json.loads(whole), "version": 3}
    state.write_text(json.dumps(older))
    assert read_local_state(root, env) is None  # Terraform upgrades older formats itself
    state.write_text(json.dumps({"meta": {}, "encrypted_data": "c2VjcmV0", "encryption_version": "v0"}))
    assert read_local_state(root, env) is None  # OpenTofu's encrypted state: only `tofu` decrypts it
    recorded = root / ".terraform" / "terraform.tfstate"
    backend = json.loads(recorded.read_text())
    recorded.write_text(json.dumps({**backend, "backend": {**backend["backend"], "type": "pg"}}))
    state.write_text(whole)
    assert local_state_path(root, env) is None  # a remote backend: only `state pull` reaches it


def test_a_write_torn_by_a_kill_is_put_back_from_terraforms_backup(tmp_path: Path) -> None:
    env = _environ(tmp_path)
    root = _root(tmp_path)
    _terraform(root, env, "init")
    _terraform(root, env, "apply", "-auto-approve")
    before = _pulled(root, env)
    (root / "main.tf").write_text((root / "main.tf").read_text() + 'resource "terraform_data" "c" {}\n')
    _terraform(root, env, "apply", "-auto-approve")  # its first write backs up `before`
    state = root / "terraform.tfstate"
    assert restore_torn_local_state(root, env) is None  # nothing torn: nothing touched
    # Killed between writeState's Truncate(0) and its Write: Terraform then sees no state at all.
    os.truncate(state, 0)
    assert _pulled(root, env) == {}
    assert restore_torn_local_state(root, env) == state
    assert _pulled(root, env) == before
    assert _terraform(root, env, "plan", "-detailed-exitcode", ok=False).returncode == 2  # only c is new
    assert "1 to add, 0 to change, 0 to destroy" in _terraform(root, env, "plan", ok=False).stdout
    assert restore_torn_local_state(root, env) is None  # once put back, left alone
    # An empty file without a backup state is no state, as Terraform reads it.
    os.truncate(state, 0)
    (root / "terraform.tfstate.backup").write_text("not a state")
    assert restore_torn_local_state(root, env) is None and state.stat().st_size == 0


def test_a_live_terraforms_state_is_never_restored_under_it(tmp_path: Path) -> None:
    """While Terraform holds its lock on the file (all its run), an empty file is its own write in
    progress: the state it is writing must not be overwritten with an older one."""
    env = _environ(tmp_path)
    root = _root(tmp_path, names=("a",))
    _terraform(root, env, "init")
    _terraform(root, env, "apply", "-auto-approve")
    state = root / "terraform.tfstate"
    (root / "terraform.tfstate.backup").write_text(state.read_text())
    started, release = tmp_path / "started", tmp_path / "release"
    (root / "main.tf").write_text(
        (root / "main.tf").read_text()
        + 'resource "terraform_data" "waits" {\n  provisioner "local-exec" {\n'
        + f'    command = "touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"\n  }}\n}}\n'
    )
    apply = subprocess.Popen(
        ["terraform", "apply", "-auto-approve"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until(started.exists, "terraform apply to run its provisioner, holding the state's lock")
        os.truncate(state, 0)  # as at the instant between its truncation and its write
        assert restore_torn_local_state(root, env) is None
        assert state.stat().st_size == 0
    finally:
        release.touch()
        out, _ = apply.communicate(timeout=120)
    assert apply.returncode == 0, out
    assert sorted(_read(root, env).addresses()) == ["terraform_data.a", "terraform_data.waits"]
