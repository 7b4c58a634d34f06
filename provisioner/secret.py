"""Secrets that never print themselves, and masking of secrets in any text we emit.

Every secret the tool handles (IMS client secret, IMS access token, DLZ SAS token,
Databricks PAT) is wrapped in `Secret` the moment it is read. `Secret.reveal()` is the
only way to the value, so a stray f-string, `repr`, log line or exception shows `***`.

`Masker` is the last line of defence for text that comes from elsewhere (Terraform's
output, HTTP error bodies): it replaces every registered secret, in its raw,
URL-encoded and URL-decoded forms, and any SAS `sig=` value it sees.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

MASK = "***"

# A SAS signature in any text: `sig=<base64, maybe URL-encoded>`. Masked even when we
# were never told the token, e.g. in a proxy's error page.
_SIG_RE = re.compile(r"(sig=)[A-Za-z0-9%+/=_\-]+", re.IGNORECASE)


class Secret:
    """A string that shows `***` everywhere except through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would be a way to smuggle the value into a file or another process.
        raise TypeError("Secret values cannot be pickled")


def mask_sas(token: str) -> str:
    """A SAS token with its signature hidden: `sv=...&sig=***`, safe to show."""
    return _SIG_RE.sub(lambda m: m.group(1) + MASK, token)


class Masker:
    """Replaces known secrets (and any `sig=` value) in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._needles: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        # Short values would mask ordinary words; real secrets are long.
        if len(value) < 6:
            return
        forms = {value, quote(value, safe=""), quote(value, safe="/=&"), unquote(value)}
        with self._lock:
            before = len(self._needles)
            self._needles.update(f for f in forms if len(f) >= 6)
            if len(self._needles) != before:
                self._pattern = None

    def mask(self, text: str) -> str:
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _SIG_RE.sub(lambda m: m.group(1) + MASK, text)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._needles:
                # Longest first so a secret never leaves a tail of a longer form behind.
                alternatives = sorted(self._needles, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(a) for a in alternatives))
            return self._pattern


# One process-wide masker: every Secret registers itself, every output path masks.
MASKER = Masker()


def register(value: str) -> None:
    MASKER.add(value)


def mask(text: str) -> str:
    return MASKER.mask(text)
