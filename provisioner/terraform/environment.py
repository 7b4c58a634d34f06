"""The child process's environment, built explicitly (as hashicorp/terraform-exec does).

Variables a user may have exported for other work would silently change what Terraform
runs here: `TF_CLI_ARGS*` inject flags, `TF_VAR_*` override our variables, `TF_WORKSPACE`
switches state. They are dropped, with a warning naming them. `TF_LOG*` passes only with
--debug, because debug logs can contain secrets. Secrets enter as `TF_VAR_…` here — never argv.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from provisioner.secret import Secret
from provisioner.terraform.guard import PROVIDER_SERVER_ENV

_DROPPED_PREFIXES = ("TF_CLI_ARGS", "TF_VAR_")
# PROVIDER_SERVER_ENV: only a target sets it (the keeper would run it), never the user's shell.
_DROPPED_EXACT = frozenset(
    {"TF_WORKSPACE", "TF_INPUT", "TF_REATTACH_PROVIDERS", "TF_IN_AUTOMATION", PROVIDER_SERVER_ENV}
)
_DEBUG_PREFIXES = ("TF_LOG",)


@dataclass(frozen=True)
class ChildEnv:
    values: Mapping[str, str] = field(repr=False)  # holds secrets: never in a repr or traceback
    dropped: tuple[str, ...] = ()
    debug_passed: tuple[str, ...] = ()
    secrets: tuple[Secret, ...] = field(default=(), repr=False)


def build_child_env(
    inherited: Mapping[str, str],
    *,
    extra: Mapping[str, str] | None = None,
    variables: Mapping[str, Secret | str] | None = None,
    secret_env: Mapping[str, Secret] | None = None,
    debug: bool = False,
    warn: Callable[[str], None] | None = None,
) -> ChildEnv:
    """Inherited env minus what would change Terraform's behaviour, plus ours.

    `variables` become `TF_VAR_<name>`; `secret_env` are secrets Terraform or its providers
    read from the environment (DATABRICKS_TOKEN, ARM_*, PG_CONN_STR).
    """
    values: dict[str, str] = {}
    dropped: list[str] = []
    debug_passed: list[str] = []
    for key, value in inherited.items():
        if key.startswith(_DROPPED_PREFIXES) or key in _DROPPED_EXACT:
            dropped.append(key)
        elif key.startswith(_DEBUG_PREFIXES):
            if debug:
                debug_passed.append(key)
                values[key] = value
            else:
                dropped.append(key)
        else:
            values[key] = value
    values.update(extra or {})
    values["TF_IN_AUTOMATION"] = "1"
    values["TF_INPUT"] = "0"
    secrets: list[Secret] = []
    for name, variable in (variables or {}).items():
        if isinstance(variable, Secret):
            secrets.append(variable)
            values[f"TF_VAR_{name}"] = variable.reveal()
        else:
            values[f"TF_VAR_{name}"] = variable
    for key, secret in (secret_env or {}).items():
        secrets.append(secret)
        values[key] = secret.reveal()
    if warn is not None:
        user_dropped = sorted(
            k for k in dropped if not k.startswith(_DEBUG_PREFIXES) and k not in ("TF_IN_AUTOMATION", "TF_INPUT")
        )
        if user_dropped:
            warn(f"ignoring {', '.join(user_dropped)} from your environment: they would change what Terraform runs")
        debug_dropped = sorted(k for k in dropped if k.startswith(_DEBUG_PREFIXES))
        if debug_dropped:
            warn(
                f"ignoring {', '.join(debug_dropped)}: Terraform debug logs may contain secrets "
                "(SAS token, access tokens) — pass --debug to let them through"
            )
        if debug_passed:
            warn(
                f"passing {', '.join(sorted(debug_passed))} to Terraform: debug logs may contain secrets "
                "(SAS token, access tokens) — do not share them"
            )
    return ChildEnv(values, tuple(sorted(dropped)), tuple(sorted(debug_passed)), tuple(secrets))
