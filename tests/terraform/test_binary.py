"""Finding terraform: TERRAFORM_BINARY, PATH, OpenTofu, and clear errors when missing or too old."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.errors import TerraformError
from provisioner.terraform.binary import find_terraform


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes' versions are remembered under this test's HOME, not the user's cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def fake(tmp_path: Path, name: str, output: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def test_real_terraform_on_path() -> None:
    binary = find_terraform({"PATH": os.environ["PATH"]})
    assert binary.flavor == "terraform" and binary.version >= (1, 5, 0)


def test_terraform_binary_env_wins(tmp_path: Path) -> None:
    tofu = fake(tmp_path, "tofu", "OpenTofu v1.8.2")
    binary = find_terraform({"TERRAFORM_BINARY": str(tofu), "PATH": os.environ["PATH"]})
    assert binary.path == str(tofu) and binary.flavor == "tofu" and binary.version == (1, 8, 2)


def test_tofu_is_found_when_terraform_is_not(tmp_path: Path) -> None:
    fake(tmp_path, "tofu", "OpenTofu v1.9.0")
    assert find_terraform({"PATH": str(tmp_path)}).flavor == "tofu"


def test_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match="terraform not found on PATH"):
        find_terraform({"PATH": str(tmp_path)})
    with pytest.raises(TerraformError, match="TERRAFORM_BINARY=/nonexistent/terraform: not found"):
        find_terraform({"TERRAFORM_BINARY": "/nonexistent/terraform", "PATH": str(tmp_path)})


def test_too_old(tmp_path: Path) -> None:
    old = fake(tmp_path, "terraform", "Terraform v1.4.7")
    with pytest.raises(TerraformError, match=r"version 1\.4\.7 is too old — dlz-provisioner needs >= 1\.5\.0"):
        find_terraform({"TERRAFORM_BINARY": str(old), "PATH": ""})


def test_not_terraform(tmp_path: Path) -> None:
    other = fake(tmp_path, "terraform", "hello")
    with pytest.raises(TerraformError, match="printed no Terraform/OpenTofu version"):
        find_terraform({"TERRAFORM_BINARY": str(other), "PATH": ""})


def counting_fake(tmp_path: Path, output: str) -> tuple[Path, Path]:
    """A fake terraform that records each time it is run."""
    runs = tmp_path / "runs"
    path = tmp_path / "bin" / "terraform"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\necho run >> '{runs}'\necho '{output}'\n")
    path.chmod(0o755)
    return path, runs


def test_a_binary_is_asked_its_version_once_per_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioner.terraform import binary as module

    environ = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")}
    path, runs = counting_fake(tmp_path, "Terraform v1.9.1")
    assert find_terraform(environ).version == (1, 9, 1)
    monkeypatch.setattr(module, "_probed", {})  # a new process: only the per-machine cache is left
    assert find_terraform(environ).version == (1, 9, 1)
    assert runs.read_text().count("run") == 1
    assert (tmp_path / "home" / ".cache" / "dlz-provisioner" / "terraform-versions.json").is_file()

    # Upgraded in place: another size and mtime, asked again.
    path.write_text(path.read_text().replace("v1.9.1", "v1.10.12"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    monkeypatch.setattr(module, "_probed", {})
    assert find_terraform(environ).version == (1, 10, 12)
    assert runs.read_text().count("run") == 2

    # Downgraded below the minimum: never served from the cache.
    path.write_text(path.read_text().replace("v1.10.12", "v1.4.0"))
    monkeypatch.setattr(module, "_probed", {})
    with pytest.raises(TerraformError, match="too old"):
        find_terraform(environ)


def test_an_unwritable_cache_only_costs_a_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioner.terraform import binary as module

    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a directory")
    environ = {"PATH": str(tmp_path / "bin"), "HOME": str(home)}
    _, runs = counting_fake(tmp_path, "Terraform v1.9.1")
    for _ in range(2):
        monkeypatch.setattr(module, "_probed", {})
        assert find_terraform(environ).version == (1, 9, 1)
    assert runs.read_text().count("run") == 2
