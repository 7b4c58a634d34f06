"""Finding terraform: TERRAFORM_BINARY, PATH, OpenTofu, and clear errors when missing or too old."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.errors import TerraformError
from provisioner.terraform.binary import find_terraform


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
