"""What the parts of the workspace emulator share: the request's caller, errors, fields."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from provisioner.sandbox.store import DatabricksError
from provisioner.sandbox.wire import Response, json_response

WORKSPACE_PREFIX = "/ws/"

Body = dict[str, Any]
Endpoint = Callable[[str, Body], Body]

CALLER = threading.local()


def caller() -> dict[str, Any]:
    """The authenticated principal of the request being handled (set by `WorkspaceEmulator.handle`)."""
    principal: dict[str, Any] = CALLER.principal
    return principal


def error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error_code": code, "message": message})


def required(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
    return value
