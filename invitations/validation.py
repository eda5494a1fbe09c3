"""Checks for every value a client can send, shared by REST and WebSocket entry points.

Each raises CallError("validation_error") with the offending field in ``details``, so a bad
value never reaches the database. The edges parse raw input with these into the typed
arguments the services take; the ``*_fields`` functions at the end parse one request body each,
checking its fields in a fixed order, so the first error a client sees is always the same.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any, TypedDict

from django.conf import settings

from .errors import CallError, validation_error
from .models import CallType

DEFAULT_REJECT_REASON = "declined"


def limits() -> dict[str, Any]:
    configured: dict[str, Any] = settings.CALLSITE
    return configured


def request_body(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise validation_error("non_field_errors", "The request body must be a JSON object.")
    return data


# Bidirectional formatting characters: they reorder how the text around them is shown, so a
# name can pose as another ("Trojan Source"). Zero-width joiners stay: emoji sequences need them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain_text(value: str) -> bool:
    """No control characters (newlines and tabs included), line separators or bidi controls."""
    return not any(ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def nesting_ok(value: Any, limit: int | None = None) -> bool:
    """Whether decoded JSON nests at most ``limit`` arrays/objects deep (without recursing)."""
    top = limits()["MAX_JSON_DEPTH"] if limit is None else limit
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > top:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def call_id(value: Any, *, required: bool = False) -> uuid.UUID:
    """A call's id, from a URL or a frame. ``required``: a missing one is a validation error."""
    if required and value is None:
        raise validation_error("call_id", "This field is required.")
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        # A malformed id names no call the user is part of: same answer as a foreign one.
        raise CallError("not_found", "No such call.") from None


def storable(value: str) -> bool:
    """Whether a JSON string can be stored and sent back: valid UTF-8 and no NUL.

    JSON allows lone surrogates ("\\ud800"), which no UTF-8 encoder accepts, and PostgreSQL text
    cannot hold NUL; either would otherwise surface as a 500 deep in the database driver.
    """
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def usernames(value: Any, *, field: str = "invitees", me: str | None = None) -> list[str]:
    """A list of 1..N usernames, duplicates removed (first occurrence kept), never yourself."""
    top = limits()["MAX_INVITEES_PER_REQUEST"]
    if value is None:
        raise validation_error(field, "This field is required.")
    if not isinstance(value, list):
        raise validation_error(field, "Must be a list of usernames.")
    names: list[str] = []
    seen: set[str] = set()  # a set, so a list of 100k names costs milliseconds, not minutes
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 150 or not storable(item):
            raise validation_error(field, "Each invitee must be a non-empty username string.")
        if item not in seen:
            seen.add(item)
            names.append(item)
            if len(names) > top:
                break
    if not names:
        raise validation_error(field, "Invite at least one user.")
    if len(names) > top:
        raise validation_error(field, f"Invite at most {top} users at once.")
    if me is not None and me in names:
        raise validation_error(field, "You cannot name yourself here.")
    return names


def extended_data(value: Any, *, field: str = "extended_data") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise validation_error(field, "Must be a string.")
    top = limits()["EXTENDED_DATA_MAX_BYTES"]
    if not storable(value):
        raise validation_error(field, "Must be valid UTF-8 text without NUL characters.")
    if len(value.encode("utf-8")) > top:
        raise validation_error(field, f"Must be at most {top} bytes in UTF-8.")
    return value


def call_type(value: Any) -> CallType:
    if value is None:
        return CallType.VIDEO
    if value not in CallType.values:
        raise validation_error("type", 'Must be "video" or "audio".')
    return CallType(value)


def default_timeout() -> int:
    return int(limits()["DEFAULT_TIMEOUT"])


def timeout(value: Any) -> int:
    lim = limits()
    if value is None:
        return default_timeout()
    # bool is an int in Python; a client sending true means a bug, not one second.
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error("timeout", "Must be a whole number of seconds.")
    seconds: int = value
    if not lim["MIN_TIMEOUT"] <= seconds <= lim["MAX_TIMEOUT"]:
        raise validation_error(
            "timeout", f"Must be between {lim['MIN_TIMEOUT']} and {lim['MAX_TIMEOUT']} seconds."
        )
    return seconds


def reason(value: Any) -> str:
    if value is None:
        return DEFAULT_REJECT_REASON
    top = limits()["REASON_MAX_LENGTH"]
    if not isinstance(value, str) or not value.strip():
        raise validation_error("reason", "Must be a non-empty string.")
    if len(value) > top:
        raise validation_error("reason", f"Must be at most {top} characters.")
    if not storable(value):
        raise validation_error("reason", "Must be valid UTF-8 text without NUL characters.")
    if not plain_text(value):
        raise validation_error("reason", "Must not contain control or bidirectional characters.")
    return value


def device_id(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 64 or not storable(value):
        raise validation_error("device_id", "Must be a string of at most 64 characters.")
    if not plain_text(value):
        raise validation_error("device_id", "Must not contain control or bidirectional characters.")
    return value


# --- one request body each, parsed into a service's keyword arguments -----------------------


class StartCallFields(TypedDict):
    invitees: list[str]
    type: CallType
    timeout: int
    extended_data: str
    device_id: str


class InviteFields(TypedDict):
    invitees: list[str]
    extended_data: str


class CancelFields(TypedDict):
    invitees: list[str] | None  # None: every ringing invitation the actor sent
    extended_data: str


class RejectFields(TypedDict):
    reason: str
    extended_data: str
    device_id: str


class DeviceFields(TypedDict):
    """Accept and quit: what to tell the others, and from which device."""

    extended_data: str
    device_id: str


class ExtendedDataFields(TypedDict):
    extended_data: str


def start_call_fields(data: dict[str, Any], *, me: str) -> StartCallFields:
    return {
        "invitees": usernames(data.get("invitees"), me=me),
        "type": call_type(data.get("type")),
        "timeout": timeout(data.get("timeout")),
        "extended_data": extended_data(data.get("extended_data")),
        "device_id": device_id(data.get("device_id")),
    }


def invite_fields(data: dict[str, Any], *, me: str) -> InviteFields:
    return {
        "invitees": usernames(data.get("invitees"), me=me),
        "extended_data": extended_data(data.get("extended_data")),
    }


def cancel_fields(data: dict[str, Any], *, me: str) -> CancelFields:
    named = data.get("invitees")
    return {
        "invitees": None if named is None else usernames(named, me=me),
        "extended_data": extended_data(data.get("extended_data")),
    }


def reject_fields(data: dict[str, Any]) -> RejectFields:
    return {
        "reason": reason(data.get("reason")),
        "extended_data": extended_data(data.get("extended_data")),
        "device_id": device_id(data.get("device_id")),
    }


def device_fields(data: dict[str, Any]) -> DeviceFields:
    return {
        "extended_data": extended_data(data.get("extended_data")),
        "device_id": device_id(data.get("device_id")),
    }


def extended_data_fields(data: dict[str, Any]) -> ExtendedDataFields:
    return {"extended_data": extended_data(data.get("extended_data"))}


# --- push devices (API.md "Push") -------------------------------------------------------------

PUSH_PROVIDERS = ("webpush", "apns", "apns_voip", "fcm")
PUSH_TOKEN_MAX = 1024  # FCM tokens run to ~200 characters, APNs ones to 64 hex digits today
PUSH_ENDPOINT_MAX = 1024
PUSH_APP_ID_MAX = 200
_HEX = frozenset("0123456789abcdefABCDEF")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class PushDeviceFields(TypedDict):
    device_id: str
    provider: str
    token: str  # the token, or a webpush subscription's endpoint: what names the installation
    subscription: dict[str, Any]
    app_id: str


def push_provider(value: Any) -> str:
    if value is None:
        raise validation_error("provider", "This field is required.")
    if value not in PUSH_PROVIDERS:
        raise validation_error("provider", f"Must be one of {', '.join(PUSH_PROVIDERS)}.")
    return str(value)


def push_token(value: Any, provider: str) -> str:
    if value is None or value == "":
        raise validation_error("token", f"A {provider} device needs its token.")
    if not isinstance(value, str) or len(value) > PUSH_TOKEN_MAX:
        raise validation_error("token", f"Must be a string of at most {PUSH_TOKEN_MAX} characters.")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise validation_error("token", "Must be printable ASCII without spaces.")
    if provider in ("apns", "apns_voip") and not set(value) <= _HEX:
        raise validation_error("token", "An APNs device token is hexadecimal.")
    return value


def _b64url_bytes(value: Any, field: str, size: int) -> str:
    import base64
    import binascii

    if not isinstance(value, str) or not value or len(value) > 200 or not value.isascii():
        raise validation_error(field, "Must be a base64url string.")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise validation_error(field, "Must be a base64url string.") from None
    if len(raw) != size:
        raise validation_error(field, f"Must encode {size} bytes.")
    return value


def push_endpoint(value: Any) -> str:
    """A Web Push endpoint: https on a push service's host (``WEBPUSH_ENDPOINT_HOSTS``).

    The server POSTs to it, so it may not name just any host (the internal network included);
    plain http only for a loopback host that setting names (local test services).
    """
    from urllib.parse import urlsplit

    field = "subscription.endpoint"
    if not isinstance(value, str) or not value:
        raise validation_error(field, "This field is required.")
    if len(value) > PUSH_ENDPOINT_MAX or not storable(value) or not value.isprintable():
        raise validation_error(field, f"Must be a URL of at most {PUSH_ENDPOINT_MAX} characters.")
    try:
        url = urlsplit(value)
        host = (url.hostname or "").lower()
        url.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise validation_error(field, "Must be a valid URL.") from None
    if url.scheme not in ("https", "http") or not host or url.username or url.password:
        raise validation_error(field, "Must be an https URL.")
    if url.scheme == "http" and host not in _LOOPBACK:
        raise validation_error(field, "Must be an https URL.")
    allowed = [h.strip().lower() for h in settings.WEBPUSH_ENDPOINT_HOSTS if h.strip()]
    if "*" not in allowed and not any(host == h or host.endswith("." + h) for h in allowed):
        raise validation_error(field, "This host is not a push service this server sends to.")
    return value


def push_subscription(value: Any) -> dict[str, Any]:
    if value is None:
        raise validation_error("subscription", "A webpush device needs its subscription.")
    if not isinstance(value, dict):
        raise validation_error("subscription", 'Must be an object {"endpoint", "keys"}.')
    endpoint = push_endpoint(value.get("endpoint"))
    keys = value.get("keys")
    if not isinstance(keys, dict):
        raise validation_error("subscription.keys", 'Must be an object {"p256dh", "auth"}.')
    p256dh = _b64url_bytes(keys.get("p256dh"), "subscription.keys.p256dh", 65)
    auth = _b64url_bytes(keys.get("auth"), "subscription.keys.auth", 16)
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}


def push_app_id(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > PUSH_APP_ID_MAX or not storable(value):
        raise validation_error(
            "app_id", f"Must be a string of at most {PUSH_APP_ID_MAX} characters."
        )
    if not plain_text(value) or " " in value:
        raise validation_error("app_id", "Must not contain spaces, control or bidi characters.")
    return value


def push_device_fields(data: dict[str, Any]) -> PushDeviceFields:
    if data.get("device_id") in (None, ""):
        raise validation_error("device_id", "This field is required.")
    device = device_id(data.get("device_id"))
    provider = push_provider(data.get("provider"))
    if provider == "webpush":
        if data.get("token") not in (None, ""):
            raise validation_error("token", "A webpush device gives a subscription, not a token.")
        subscription = push_subscription(data.get("subscription"))
        token = subscription["endpoint"]
    else:
        if data.get("subscription") is not None:
            raise validation_error("subscription", f"A {provider} device gives a token.")
        token = push_token(data.get("token"), provider)
        subscription = {}
    return {
        "device_id": device,
        "provider": provider,
        "token": token,
        "subscription": subscription,
        "app_id": push_app_id(data.get("app_id")),
    }


def ack_fields(data: dict[str, Any]) -> dict[str, str]:
    return {"device_id": device_id(data.get("device_id"))}
