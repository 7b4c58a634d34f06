"""IMS OAuth server-to-server: client_credentials → access token, reused while it lives."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import requests

from provisioner.aep.http import error_detail, json_body, send
from provisioner.clock import Clock
from provisioner.errors import CredentialsError
from provisioner.secret import Secret

# Renew a little early so a token never expires between our check and AEP's.
_EARLY_RENEWAL_SECONDS = 300


@dataclass(frozen=True)
class AccessToken:
    token: Secret
    expires_at: float  # a deadline on `clock`, the clock of the run that asked for it (monotonic)
    clock: Clock

    def usable(self, clock: Clock) -> bool:
        # A deadline on another clock (another run's, a test's fake) says nothing: ask again.
        return clock is self.clock and clock.monotonic() < self.expires_at - _EARLY_RENEWAL_SECONDS


_cache: dict[tuple[str, str, str], AccessToken] = {}
_cache_lock = threading.Lock()


def get_access_token(
    session: requests.Session, ims_url: str, client_id: str, client_secret: Secret, scope: str, clock: Clock
) -> Secret:
    """A valid IMS access token; a cached one is reused within its lifetime (no refresh tokens in S2S),
    counted on `clock` (the run's: the cache lives as long as the process, which runs one command)."""
    key = (ims_url, client_id, scope)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached.usable(clock):
            return cached.token
    token = _request_token(session, ims_url, client_id, client_secret, scope, clock)
    with _cache_lock:
        _cache[key] = token
    return token.token


def _request_token(
    session: requests.Session, ims_url: str, client_id: str, client_secret: Secret, scope: str, clock: Clock
) -> AccessToken:
    what = "IMS token request"
    response = send(
        session,
        "POST",
        f"{ims_url.rstrip('/')}/ims/token/v3",
        what,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret.reveal(),
            "scope": scope,
        },
    )
    if response.status_code in (400, 401, 403):
        detail = error_detail(response)
        raise CredentialsError(
            f"{what}: IMS answered {response.status_code}{f' ({detail})' if detail else ''} — "
            "check aep.client_id and the AEP_CLIENT_SECRET environment variable (expired or wrong secret?)"
        )
    if response.status_code != 200:
        raise CredentialsError(f"{what}: IMS answered HTTP {response.status_code} — try again later")
    body = json_body(response, what)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise CredentialsError(f"{what}: IMS answered 200 without an access_token — check aep.ims_url")
    try:
        lifetime = float(body.get("expires_in", 0))
    except (TypeError, ValueError):
        lifetime = 0.0
    # IMS says seconds; a value above a day in milliseconds would be the v2 API — normalise.
    if lifetime > 10 * 86400:
        lifetime /= 1000.0
    return AccessToken(token=Secret(token), expires_at=clock.monotonic() + lifetime, clock=clock)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
