"""`terraform state pull`: the raw state from any backend, without starting a provider."""

from __future__ import annotations


def state_pull_args() -> list[str]:
    return ["state", "pull"]
