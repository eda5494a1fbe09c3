"""The /ws/ wire format (API.md "WebSocket /ws/"): parsing client frames, building server ones.

Kept apart from the consumer so the consumer only routes: parse, check access, call a service.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.utils import timezone

from .. import selectors, validation
from ..errors import CallError, validation_error

MAX_FRAME_BYTES = 64 * 1024
CLIENT_TYPES = ("call.ack", "rtc.signal", "ping", "presence.subscribe")


def parse(text: str | None, binary: bytes | None) -> dict[str, Any]:
    """A client frame as a dict with a known ``type``, or CallError("validation_error")."""
    if text is None:
        raise validation_error("frame", "Send JSON text frames; binary frames are not accepted.")
    try:
        message = json.loads(text)
    except ValueError:
        raise validation_error("frame", "The frame is not valid JSON.") from None
    except RecursionError:  # past Python's recursion limit json raises this, not ValueError
        raise validation_error("frame", "The frame is nested too deeply.") from None
    if not validation.nesting_ok(message):
        raise validation_error("frame", "The frame is nested too deeply.")
    if not isinstance(message, dict):
        raise validation_error("frame", "A message must be a JSON object with a type.")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise validation_error("type", "A message needs a string type.")
    if kind not in CLIENT_TYPES:
        raise CallError(
            "validation_error",
            f"Unknown message type {kind[:64]!r}.",
            {"type": [f"Must be one of {', '.join(CLIENT_TYPES)}."]},
        )
    return message


def ack_call_id(message: dict[str, Any]) -> UUID:
    """The call a ``call.ack`` acknowledges."""
    return validation.call_id(message.get("call_id"), required=True)


@dataclass(frozen=True)
class Signal:
    """An ``rtc.signal`` from a client: opaque WebRTC ``data`` for participant ``to``."""

    call_id: UUID
    to: str
    data: dict[str, Any]


def signal(message: dict[str, Any]) -> Signal:
    """Parse an ``rtc.signal``; whether the sender may signal ``to`` is relay.resolve's call."""
    data = message.get("data")
    if not isinstance(data, dict):
        raise CallError(
            "validation_error",
            "data must be a JSON object.",
            {"data": ["Must be an object (description or candidate)."]},
        )
    call_id = validation.call_id(message.get("call_id"), required=True)
    to = message.get("to")
    if not isinstance(to, str) or not to.strip():
        raise validation_error("to", "Name the participant to signal (a username).")
    return Signal(call_id=call_id, to=to, data=data)


def frame_size(text: str | None, binary: bytes | None) -> int:
    if text is not None:
        # Cheap upper bound first: a str of n code points is at most 4n bytes in UTF-8.
        if len(text) * 4 <= MAX_FRAME_BYTES:
            return len(text)
        return len(text.encode("utf-8", errors="surrogatepass"))
    return len(binary or b"")


def device_id_from(query: dict[str, list[str]]) -> str:
    """The client's own ``?device_id=``, or one the server makes up for this socket."""
    chosen = validation.device_id((query.get("device_id") or [""])[0])
    return chosen or f"srv-{secrets.token_hex(8)}"


def presence_users(message: dict[str, Any], limit: int) -> list[str]:
    """The usernames of a ``presence.subscribe``: each once, in the order given, at most ``limit``.

    Usernames nobody has are kept (they cost an index entry, and the snapshot leaves them out):
    telling them apart would tell a client which usernames exist.
    """
    users = message.get("users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise validation_error("users", "users must be a list of usernames (strings).")
    unique = list(dict.fromkeys(users))
    if len(unique) > limit:
        raise validation_error("users", f"Subscribe to at most {limit} users at once.")
    return unique


def error(exc: CallError, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """API.md's error envelope plus ``type``; echoes what it answers, to help clients match."""
    event: dict[str, Any] = {"type": "error", **exc.as_dict()}
    if request is not None:
        if isinstance(request.get("type"), str):
            event["request_type"] = request["type"][:64]
        call_id = request.get("call_id")
        if isinstance(call_id, str) and len(call_id) <= 64:
            event["call_id"] = call_id
    return event


def session_ready(user: User, device_id: str) -> dict[str, Any]:
    """Everything a device needs to (re)build its view: what rings for me, what I talk in."""
    incoming, current = selectors.session_snapshots(user)
    return {
        "type": "session.ready",
        "user": user.get_username(),
        "device_id": device_id,
        "incoming": incoming,
        "current": current,
        # Deadlines are absolute; a device with a skewed clock can correct with this.
        "server_time": timezone.now().isoformat(),
    }


def rtc_signal(
    *, call_id: str, sender: str, sender_device: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "rtc.signal",
        "call_id": call_id,
        "from": sender,
        "from_device": sender_device,
        "data": data,
    }
