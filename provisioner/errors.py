"""The exit codes of `provision`, and the exception types the CLI turns into a one-line message."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Every exit code `provision` uses; 0, 1 and 2 are Terraform's -detailed-exitcode."""

    OK = 0
    NO_CHANGES = 0  # plan: nothing to change
    HEALTHY = 0  # status: every cluster on the current token, not expiring
    ERROR = 1
    CHANGES = 2  # plan: changes planned
    EXPIRING = 3  # status: the token expires within sas.warn_days
    DRIFT = 4  # status: something is not as provision.yaml and AEP say
    # An unexpected exception (a bug): sysexits.h's EX_SOFTWARE, so no alert reads a crash as
    # one of the codes above (it was 3, which status also used for "expiring").
    CRASH = 70
    CANCELLED = 130  # Ctrl-C / SIGTERM, like a shell's 128 + SIGINT


class ProvisionError(Exception):
    """A failure the user can fix; the message names what, where and how."""

    exit_code: int = ExitCode.ERROR


class ConfigError(ProvisionError):
    """provision.yaml (or the environment it reads) is not usable."""


class ConfigErrors(ConfigError):
    """Several problems in provision.yaml, found in one pass: one line each, in file order."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


class CredentialsError(ProvisionError):
    """IMS or AEP refused, failed or answered something we cannot use."""


class TerraformError(ProvisionError):
    """The terraform binary is missing, too old, or a command failed."""


class RenderError(ProvisionError):
    """A root could not be rendered (nothing was written)."""
