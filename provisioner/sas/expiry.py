"""Has AEP replaced the SAS token the workspace holds? ("rotation needed")

AEP refreshes on read: a GET of the DLZ credentials after `expiryDate` returns a *new* token
and revokes the old one (seed doc, `expiryDate` row; `../shared/reference/aep-api-facts.md`).
So after expiry the first command that reads the credentials — any plan, status,
credentials, rotate — rotates the token at Adobe, and every cluster loses the DLZ until the
new token is put live. Every command therefore compares AEP's current token with the one
the workspace holds, as Terraform last wrote it:

- `secret_scope` mode: the `databricks_secret`'s `string_value` in the state;
- `inline` mode: each `databricks_cluster`'s `spark_conf` entry in the state.

Values are compared in memory (constant time) and never printed: the outcome names only
where the old token sits and dates.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.aep.landingzone import DlzCredentials
    from provisioner.config.model import Environment
    from provisioner.terraform import TerraformState

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


def held_tokens(state: TerraformState, env: Environment, creds: DlzCredentials) -> dict[str, str]:
    """Where the workspace holds a SAS token, per Terraform state → that token (in memory only)."""
    held: dict[str, str] = {}
    if env.sas.mode == "secret_scope":
        for _, attrs in state.instances("databricks_secret"):
            if attrs.get("scope") == env.sas.secret_scope and attrs.get("key") == env.sas.secret_key:
                value = attrs.get("string_value")
                if isinstance(value, str) and value:
                    held[f"secret {env.sas.secret_scope}/{env.sas.secret_key}"] = value
    else:
        for name, attrs in sorted(state.instances("databricks_cluster")):
            value = (attrs.get("spark_conf") or {}).get(creds.spark_conf_key)
            if isinstance(value, str) and value:
                held[f"cluster {name}"] = value
    return held


def token_replaced(
    state: TerraformState, env: Environment, creds: DlzCredentials, *, secret_holds_current: bool | None = None
) -> TokenReplaced | None:
    """A TokenReplaced when something in the workspace holds a token other than AEP's current one.

    `secret_holds_current`: what the workspace itself says about the secret when its value
    is not in the state (a fingerprint the tool records beside it); None = unknown.
    """
    current = creds.sas_token.reveal().encode()
    held = held_tokens(state, env, creds)
    stale = [where for where, value in held.items() if not hmac.compare_digest(value.encode(), current)]
    secret = f"secret {env.sas.secret_scope}/{env.sas.secret_key}"
    if env.sas.mode == "secret_scope" and secret_holds_current is False and secret not in stale:
        stale.insert(0, secret)
    return TokenReplaced(tuple(stale), creds.expiry_date) if stale else None


def plan_token_honoured(plan: dict[str, Any], creds: DlzCredentials) -> bool | None:
    """Was this saved plan (`terraform show -json`) made with AEP's current token? None: no token in it."""
    value = ((plan.get("variables") or {}).get("dlz_sas_token") or {}).get("value")
    if not isinstance(value, str) or not value:
        return None
    return hmac.compare_digest(value.encode(), creds.sas_token.reveal().encode())
