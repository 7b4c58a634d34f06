"""One HTTP session for IMS and AEP: timeouts, bounded retries, and errors that never carry a secret.

Retries are urllib3's `Retry`: 429 honours `Retry-After`, 5xx and connection errors back off
exponentially with jitter. The total time spent waiting is capped (`max_retry_seconds`), so
a gateway answering `Retry-After: 3600` cannot stall a scheduled CI job for an hour. The waits
are ours (`_BoundedRetry._sleep_bounded`) and sleep on the run's clock (provisioner/clock.py), so
tests move time instead of waiting; urllib3 still decides when and how long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from provisioner import __version__
from provisioner.clock import Clock, RealClock
from provisioner.errors import CredentialsError
from provisioner.secret import mask

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"dlz-provisioner/{__version__}"


class _BoundedRetry(Retry):
    """`Retry` whose waits, `Retry-After` included, stop once a total budget is spent."""

    max_total_sleep: float = 60.0
    slept: float = 0.0
    clock: Clock = RealClock()

    def new(self, **kw: Any) -> _BoundedRetry:
        new = super().new(**kw)
        new.max_total_sleep = self.max_total_sleep
        new.slept = self.slept
        new.clock = self.clock
        return new

    def sleep_for_retry(self, response: Any = None) -> bool:
        wait = self.get_retry_after(response) if response is not None else None
        if wait is None:
            return False
        self._sleep_bounded(wait)
        return True

    def _sleep_backoff(self) -> None:
        self._sleep_bounded(self.get_backoff_time())

    def _sleep_bounded(self, seconds: float) -> None:
        budget = self.max_total_sleep - self.slept
        seconds = max(0.0, min(seconds, budget))
        if seconds > 0:
            self.clock.sleep(seconds)
        self.slept += seconds

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or self.slept >= self.max_total_sleep > 0


@dataclass(frozen=True)
class HttpSettings:
    timeout_seconds: float = 30.0
    retries: int = 5
    max_retry_seconds: float = 60.0
    backoff_factor: float = 0.5


def new_session(settings: HttpSettings, clock: Clock | None = None) -> requests.Session:
    retry = _BoundedRetry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        other=0,
        backoff_factor=settings.backoff_factor,
        backoff_jitter=settings.backoff_factor / 2,
        backoff_max=min(30.0, settings.max_retry_seconds or 30.0),
        status_forcelist=RETRY_STATUSES,
        # Refresh is a POST; retrying it is safe because the newest token is the one that counts.
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.max_total_sleep = settings.max_retry_seconds
    retry.clock = clock or RealClock()
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.request = _with_timeout(session.request, settings.timeout_seconds)
    return session


def single_attempt_session(settings: HttpSettings) -> requests.Session:
    """A session that never repeats a request: for calls that are not idempotent (a lost answer
    may hide a call that took effect, so the caller looks before trying again)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.request = _with_timeout(session.request, settings.timeout_seconds)
    return session


def _with_timeout(request: Any, timeout: float) -> Any:
    def call(method: str, url: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", timeout)
        response: requests.Response = request(method, url, **kw)
        return response

    return call


def send(session: requests.Session, method: str, url: str, what: str, **kw: Any) -> requests.Response:
    """Send a request; turn transport failures into one masked line naming `what` failed."""
    try:
        return session.request(method, url, **kw)
    except requests.exceptions.RetryError:
        raise CredentialsError(
            f"{what}: {url_without_query(url)} kept answering 429/5xx after retries — try again later "
            "(raise aep.retries or aep.max_retry_seconds for a slow gateway)"
        ) from None
    except requests.exceptions.Timeout:
        raise _timeout_error(what, url) from None
    except requests.exceptions.ConnectionError as exc:
        # Read timeouts that used up the retries arrive wrapped as a ConnectionError.
        if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
            raise _timeout_error(what, url) from None
        raise CredentialsError(
            f"{what}: cannot connect to {url_without_query(url)} — check the URL and the network"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise CredentialsError(f"{what}: request failed ({mask(type(exc).__name__)})") from None


def _timeout_error(what: str, url: str) -> CredentialsError:
    return CredentialsError(
        f"{what}: {url_without_query(url)} did not answer in time — check the network or raise aep.timeout_seconds"
    )


def json_body(response: requests.Response, what: str) -> dict[str, Any]:
    """The response's JSON object, or one clear error (an HTML proxy page is common)."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise CredentialsError(
            f"{what}: HTTP {response.status_code} with a {kind} body instead of JSON — "
            "a proxy or gateway answered; check the URL and try again"
        ) from None
    if not isinstance(body, dict):
        raise CredentialsError(f"{what}: HTTP {response.status_code} with an unexpected JSON {type(body).__name__}")
    return body


def error_detail(response: requests.Response) -> str:
    """A short, masked description of an error body in any of AEP's and IMS's shapes."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code = body.get("error_code") or body.get("code") or body.get("error") or body.get("title") or ""
    text = body.get("message") or body.get("error_description") or body.get("detail") or body.get("errorMessage") or ""
    detail = " ".join(str(p) for p in (code, text) if p)
    return mask(detail[:200])


def url_without_query(url: str) -> str:
    return url.split("?", 1)[0]
