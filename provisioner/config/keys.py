"""Key paths into provision.yaml, written as a user writes them: `clusters[0].spark_conf`."""

from __future__ import annotations

import json
import re
from typing import Any

# A mapping key (always a str: YAML keys are shown as text) or a list index.
Key = str | int

# What a YAML key usually looks like, including Spark's dotted names and tag keys.
_PLAIN_KEY = re.compile(r"[\w.:/@+-]+")


def dotted(keys: tuple[Any, ...]) -> str:
    """A key path as the user writes it: `clusters[0].spark_conf`.

    A key a user could not type bare (a newline, a quote, a control character) is shown
    quoted and escaped — `spark_conf["a\\nb"]` — so the error stays one readable line.
    """
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(key, str) and not _PLAIN_KEY.fullmatch(key):
            out += f"[{json.dumps(key, ensure_ascii=not key.isprintable())}]"
        else:
            out += ("." if out else "") + str(key)
    return out
