"""Asking before changing infrastructure — and refusing to guess when nobody can answer."""

from __future__ import annotations

from provisioner.errors import ProvisionError
from provisioner.run.context import RunContext


def require_approval_possible(ctx: RunContext, auto_approve: bool, action: str) -> None:
    """Fail before any work when we would have to ask but there is no terminal to ask on."""
    if not auto_approve and not ctx.interactive:
        raise ProvisionError(f"refusing to {action} without a terminal to confirm on — pass --auto-approve")


def confirm(ctx: RunContext, auto_approve: bool, question: str) -> bool:
    if auto_approve:
        return True
    answer = input(f"{question} Only 'yes' will be accepted: ")
    return answer.strip() == "yes"
