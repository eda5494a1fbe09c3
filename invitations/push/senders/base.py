"""What every push sender takes and answers, so delivery never looks inside a provider.

A sender gets one ``PushMessage`` for one device and answers one ``PushResult``. It never retries
and never touches the database: the delivery worker decides, from the result, whether to retry
(honouring ``retry_after``), drop the device (``DEAD``) or give up. Base URLs, keys and CA bundles
come from settings, so tests point every sender at a local fixture server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Outcome(enum.StrEnum):
    SENT = "sent"  # the provider accepted it
    DEAD = "dead"  # the token or subscription is gone: remove the device
    RETRY = "retry"  # transient (429, 5xx, connection error): try again before the deadline
    FAILED = "failed"  # refused for good (bad request, payload too large): do not retry
    CONFIG_ERROR = "config_error"  # our own credentials are wrong (APNs 403): keep the device


@dataclass(frozen=True)
class PushMessage:
    provider: str  # "webpush" | "apns" | "apns_voip" | "fcm"
    kind: str  # "ring" | "stop"
    payload: dict[str, Any]  # API.md's payload: {"v": 1, "type", "call_id", ...}
    expires_at: datetime  # aware; the provider must not deliver after it (APNs expiration, TTL)
    collapse_id: str  # the call id: a stop replaces its ring where the provider allows
    token: str = ""  # apns, apns_voip, fcm
    subscription: dict[str, Any] = field(default_factory=dict)  # webpush: {"endpoint", "keys"}
    app_id: str = ""  # APNs topic / FCM app, when the device gave one
    device_id: str = ""


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    status: int | None = None  # the provider's HTTP status, when there was one
    retry_after: float | None = None  # seconds, from a Retry-After header
    detail: str = ""  # the provider's reason ("Unregistered", "UNREGISTERED"...), for the timeline
    dead_since: datetime | None = None  # APNs 410 timestamp: a registration after it survives


class Sender(Protocol):
    """An async client for one provider; one instance is shared by the delivery worker."""

    async def send(self, message: PushMessage) -> PushResult: ...

    async def close(self) -> None: ...
