"""HCL literals for user values, laid out the way `terraform fmt` would.

Every user value reaches the generated HCL through `string()` (a quoted, escaped literal)
so that Terraform sees exactly what the user wrote and never an expression: quotes,
backslashes and control characters are escaped, and the template sequences `${` and `%{`
are doubled (`$${`, `%%{`), which HCL reads back as the literal text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


# Everything string() must escape: quote, backslash, C0/C1 controls, DEL, LS, PS.
_SPECIAL = re.compile('[\\\\"\x00-\x1f\x7f-\x9f\u2028\u2029]')


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def string(value: str) -> str:
    """A quoted HCL string literal whose value is exactly `value`."""
    # One regex pass instead of a Python loop per character: large configs render many strings.
    body = _SPECIAL.sub(_escape, value).replace("${", "$${").replace("%{", "%%{")
    return f'"{body}"'


def number(value: int | float) -> str:
    return str(value)


def boolean(value: bool) -> str:
    return "true" if value else "false"


def literal(value: object) -> str:
    """An HCL literal for a plain Python value."""
    if isinstance(value, bool):
        return boolean(value)
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        return string(value)
    raise TypeError(f"no HCL literal for {type(value).__name__}")


def attributes(pairs: Iterable[tuple[str, str | None]], indent: int) -> str:
    """`name = value` lines with the `=` aligned, as `terraform fmt` aligns consecutive attributes.

    Values must already be HCL (use `literal`/`string`); pairs whose value is None are skipped.
    """
    rows = [(k, v) for k, v in pairs if v is not None]
    if not rows:
        return ""
    width = max(len(k) for k, _ in rows)
    pad = " " * indent
    return "\n".join(f"{pad}{k.ljust(width)} = {v}" for k, v in rows)


def map_attribute(name: str, entries: Mapping[str, str], indent: int) -> str:
    """A map attribute, keys sorted and quoted, values already HCL expressions."""
    pad = " " * indent
    if not entries:
        return f"{pad}{name} = {{}}"
    body = attributes(((string(k), v) for k, v in sorted(entries.items())), indent + 2)
    return f"{pad}{name} = {{\n{body}\n{pad}}}"
