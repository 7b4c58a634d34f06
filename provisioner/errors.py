"""The one exception type the CLI turns into a one-line message and exit code 1."""

from __future__ import annotations


class ProvisionError(Exception):
    """A failure the user can fix; the message names what, where and how."""

    exit_code = 1


class ConfigError(ProvisionError):
    """provision.yaml (or the environment it reads) is not usable."""


class CredentialsError(ProvisionError):
    """IMS or AEP refused, failed or answered something we cannot use."""


class TerraformError(ProvisionError):
    """The terraform binary is missing, too old, or a command failed."""


class RenderError(ProvisionError):
    """A root could not be rendered (nothing was written)."""
