"""`terraform validate` and `terraform fmt -check`."""

from __future__ import annotations


def validate_args() -> list[str]:
    return ["validate", "-no-color"]


def fmt_check_args() -> list[str]:
    return ["fmt", "-check", "-no-color", "-list=true"]
