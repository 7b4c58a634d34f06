"""The AEP side of the flow as one object: IMS token (or a ready one), then DLZ credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import requests

from provisioner.aep import ims, landingzone
from provisioner.aep.http import HttpSettings, new_session
from provisioner.aep.landingzone import AepContext, DlzCredentials
from provisioner.clock import Clock, RealClock
from provisioner.config.model import AepSettings
from provisioner.errors import ConfigError
from provisioner.secret import Secret


@dataclass(frozen=True)
class AepSecrets:
    """Secrets for AEP, read only from the environment."""

    client_secret: Secret | None
    access_token: Secret | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AepSecrets:
        environ = os.environ if environ is None else environ
        secret = environ.get("AEP_CLIENT_SECRET") or None
        token = environ.get("AEP_ACCESS_TOKEN") or None
        return cls(Secret(secret) if secret else None, Secret(token) if token else None)

    def require(self) -> None:
        """A local check, before any call: is there anything to authenticate to IMS with?"""
        if self.access_token is None and self.client_secret is None:
            raise ConfigError(
                "AEP_CLIENT_SECRET is not set — export the API client's secret (or a ready AEP_ACCESS_TOKEN)"
            )


class AepClient:
    def __init__(
        self,
        settings: AepSettings,
        secrets: AepSecrets,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ):
        self.settings = settings
        self.secrets = secrets
        self.clock = clock or RealClock()  # the run's: what retries and backoffs sleep on
        self.session = session or new_session(
            HttpSettings(settings.timeout_seconds, settings.retries, settings.max_retry_seconds), self.clock
        )

    def context(self) -> AepContext:
        return AepContext(
            platform_url=self.settings.platform_url,
            access_token=self._access_token(),
            client_id=self.settings.client_id,
            org_id=self.settings.org_id,
            sandbox=self.settings.sandbox,
        )

    def get_credentials(self) -> DlzCredentials:
        return landingzone.get_credentials(self.session, self.context())

    def refresh_credentials(self) -> DlzCredentials:
        return landingzone.refresh_credentials(self.session, self.context())

    def _access_token(self) -> Secret:
        self.secrets.require()
        if self.secrets.access_token is not None:
            return self.secrets.access_token
        assert self.secrets.client_secret is not None  # require() checked
        s = self.settings
        return ims.get_access_token(
            self.session, s.ims_url, s.client_id, self.secrets.client_secret, s.scope, self.clock
        )
