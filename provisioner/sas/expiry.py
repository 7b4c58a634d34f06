"""Has AEP replaced the SAS token the workspace holds? ("rotation needed")

AEP refreshes on read: a GET of the DLZ credentials after `expiryDate` returns a *new* token
and revokes the old one (seed doc, `expiryDate` row; `../shared/reference/aep-api-facts.md`).
So after expiry the first command that reads the credentials — any plan, status,
credentials, rotate — rotates the token at Adobe, and every cluster loses the DLZ until the
new token is put live. Every command therefore compares AEP's current token with the one
the workspace holds; where that is, is the mode's to say (`SasMode.token_replaced`):

- `inline` mode: each `databricks_cluster`'s `spark_conf` entry in the state;
- `secret_scope` mode: the fingerprint the tool writes beside the secret
  (provisioner.sas.secret_value), or, in the layout before it, the `databricks_secret`'s
  `string_value` in the state.

Values are compared in memory (constant time) and never printed: the outcome names only
where the old token sits and dates.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # its module imports requests, which a command's start keeps off its path (plan ahead)
    from provisioner.aep.landingzone import DlzCredentials

# DLZ credentials are valid 90 days (aep-api-facts.md): the issue date is expiry minus 90 days.
TOKEN_VALID_DAYS = 90


@dataclass(frozen=True)
class TokenReplaced:
    """AEP's current token is not the one the workspace holds."""

    holders: tuple[str, ...]  # where the old token sits, e.g. "secret aep-dlz/dlz-sas-token"
    expiry_date: dt.date  # of AEP's current token

    @property
    def issued_on(self) -> dt.date:
        return self.expiry_date - dt.timedelta(days=TOKEN_VALID_DAYS)

    def reason(self) -> str:
        verb = "holds" if len(self.holders) == 1 else "hold"
        return (
            f"AEP issued a new SAS token on {self.issued_on.isoformat()} (valid until "
            f"{self.expiry_date.isoformat()}): the old one expired or was refreshed outside the tool, "
            f"and {', '.join(self.holders)} still {verb} the old one, which AEP no longer honours"
        )


def token_replaced(
    held: Mapping[str, str], creds: DlzCredentials, *, known_stale: Sequence[str] = ()
) -> TokenReplaced | None:
    """A TokenReplaced when something holds a token other than AEP's current one.

    `held`: where the workspace holds a token, per the state (the mode reads it: provisioner.sas.mode)
    → that token, compared here in constant time; `known_stale`: holders the workspace itself
    says are stale although the state holds no value for them (the secret's fingerprint).
    """
    current = creds.sas_token.reveal().encode()
    stale = [where for where, value in held.items() if not hmac.compare_digest(value.encode(), current)]
    stale[:0] = [where for where in known_stale if where not in stale]
    return TokenReplaced(tuple(stale), creds.expiry_date) if stale else None


def plan_token_honoured(plan: dict[str, Any], creds: DlzCredentials) -> bool | None:
    """Was this saved plan (`terraform show -json`) made with AEP's current token? None: no token in it."""
    value = ((plan.get("variables") or {}).get("dlz_sas_token") or {}).get("value")
    if not isinstance(value, str) or not value:
        return None
    return hmac.compare_digest(value.encode(), creds.sas_token.reveal().encode())
