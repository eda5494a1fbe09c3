"""The one error type of the domain, mapped once to HTTP (api/errors.py) and WebSocket errors."""

from __future__ import annotations

from typing import Any

# Machine code -> HTTP status. API.md "Errors".
STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 400,
    "parse_error": 400,
    "not_authenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_state": 409,
    "busy": 409,
    "throttled": 429,
    "server_error": 500,
}


class CallError(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def as_dict(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def validation_error(field: str, message: str) -> CallError:
    return CallError("validation_error", message, {field: [message]})
