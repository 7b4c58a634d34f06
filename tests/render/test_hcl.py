"""HCL literals: every user value must reach Terraform as written, never as an expression."""

from __future__ import annotations

import pytest

from provisioner.render import hcl


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", '"plain"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("two\nlines\r\tx", r'"two\nlines\r\tx"'),
        ("${var.x}", '"$${var.x}"'),
        ("%{ if true }", '"%%{ if true }"'),
        ("$${kept}", '"$$${kept}"'),
        ("{{secrets/s/k}}", '"{{secrets/s/k}}"'),
        ("\x00\x1b", r'"\u0000\u001b"'),
        ("caf\u00e9 \u2603", '"caf\u00e9 \u2603"'),
    ],
)
def test_string_escapes(value: str, literal: str) -> None:
    assert hcl.string(value) == literal


def test_literal_types() -> None:
    assert hcl.literal(True) == "true"
    assert hcl.literal(3) == "3"
    assert hcl.literal("x") == '"x"'
    with pytest.raises(TypeError):
        hcl.literal([1])


def test_attributes_align_like_terraform_fmt() -> None:
    text = hcl.attributes([("a", "1"), ("longer_name", "2"), ("skipped", None)], 2)
    assert text == "  a           = 1\n  longer_name = 2"


def test_map_attribute_sorts_keys() -> None:
    text = hcl.map_attribute("tags", {"b": '"2"', "a": '"1"'}, 2)
    assert text == '  tags = {\n    "a" = "1"\n    "b" = "2"\n  }'
