"""APNs over HTTP/2 with token-based authentication (an ES256 provider JWT).

The client is ``httpx.AsyncClient(http2=True)`` (h2 underneath), not aioapns: aioapns 4.0 dials
Apple's two fixed hosts on port 443, so it cannot be pointed at ``APNS_BASE_URL`` (a local
fixture, a proxy, the sandbox) without patching it, while httpx takes any base URL, an
``ssl.SSLContext`` built from ``APNS_CA_BUNDLE``, negotiates h2 by ALPN and multiplexes every push
over one kept-alive connection, which is what Apple asks of providers.

Settings: ``APNS_KEY_FILE`` (.p8), ``APNS_KEY_ID``, ``APNS_TEAM_ID``, ``APNS_TOPIC`` (the app's
bundle id; VoIP pushes go to ``<topic>.voip``), ``APNS_BASE_URL`` (default Apple's production
host), ``APNS_CA_BUNDLE`` (optional).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .base import Outcome, PushMessage, PushResult
from .common import (
    HTTPSender,
    compact_json,
    config_error,
    expired_result,
    json_body,
    seconds_left,
    transient,
)

PROVIDER = "apns"
DEFAULT_BASE_URL = "https://api.push.apple.com"
# Apple's limits: 5,120 bytes for a VoIP push, 4,096 for any other remote notification.
MAX_VOIP_BYTES = 5120
MAX_ALERT_BYTES = 4096
# Apple refuses provider tokens older than an hour and throttles ones renewed more often than
# every 20 minutes: renew at 50.
TOKEN_MAX_AGE = 50 * 60
DEVICE_TOKEN = re.compile(r"^[0-9A-Fa-f]{16,200}$")
DEAD_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}
STOP_TEXT = {
    "cancelled": "Missed call",
    "timeout": "Missed call",
    "answered_elsewhere": "Answered on another device",
    "rejected": "Call declined",
    "ended": "Call ended",
}


def alert_payload(message: PushMessage) -> dict[str, Any]:
    """API.md's payload plus an ``aps`` alert: a stop replaces the ring's notification on the
    device (same ``apns-collapse-id``) with what became of the call."""
    payload = message.payload
    inviter = payload.get("inviter") or {}
    who = str(inviter.get("display_name") or inviter.get("username") or "")
    call_type = "video" if payload.get("call_type") == "video" else "audio"
    if message.kind == "ring":
        aps: dict[str, Any] = {
            "alert": {"title": who, "body": f"Incoming {call_type} call"},
            "sound": "default",
            "interruption-level": "time-sensitive",
        }
    else:
        text = STOP_TEXT.get(str(payload.get("reason", "")), "Call ended")
        aps = {"alert": {"title": who, "body": text}}
    aps["thread-id"] = str(payload.get("call_id", message.collapse_id))
    return {**payload, "aps": aps}


class APNsSender(HTTPSender):
    """APNs for both ``apns`` and ``apns_voip`` (one HTTP/2 connection)."""

    provider = PROVIDER
    settings_prefix = "APNS"
    options = ("key_file", "key_id", "team_id", "topic", "base_url")
    defaults = {"base_url": DEFAULT_BASE_URL}
    http2 = True

    def __init__(self, **given: str | None) -> None:
        super().__init__(**given)
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._key_error = ""
        self._token: tuple[str, float] | None = None  # (JWT, issued at)

    def _signing_key(self) -> ec.EllipticCurvePrivateKey | None:
        cfg = self.config
        if self._key is None and not self._key_error:
            try:
                if not (cfg["key_file"] and cfg["key_id"] and cfg["team_id"]):
                    raise ValueError("APNS_KEY_FILE, APNS_KEY_ID and APNS_TEAM_ID must be set")
                key = serialization.load_pem_private_key(
                    Path(cfg["key_file"]).read_bytes(), password=None
                )
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise ValueError("APNS_KEY_FILE is not an EC (.p8) key")
                self._key = key
            except (OSError, ValueError, TypeError) as exc:
                self._key_error = f"APNs key: {exc}"
        return self._key

    def provider_token(self) -> str:
        key = self._signing_key()
        if key is None:
            raise RuntimeError(self._key_error)
        now = time.time()
        if self._token is None or now - self._token[1] >= TOKEN_MAX_AGE:
            token = jwt.encode(
                {"iss": self.config["team_id"], "iat": int(now)},
                key,
                algorithm="ES256",
                headers={"kid": self.config["key_id"]},
            )
            self._token = (token, now)
        return self._token[0]

    def _request(self, message: PushMessage) -> tuple[dict[str, str], bytes] | PushResult:
        voip = message.provider == "apns_voip"
        topic = message.app_id or self.config["topic"]
        if not topic:
            return config_error(PROVIDER, "APNS_TOPIC is not set")
        if voip:
            if message.kind != "ring":
                # A VoIP push must report a call to CallKit; a stop never goes as one.
                return PushResult(Outcome.FAILED, detail="a stop is never sent as a VoIP push")
            if not topic.endswith(".voip"):
                topic += ".voip"
            body = compact_json(message.payload)
            limit = MAX_VOIP_BYTES
        else:
            body = compact_json(alert_payload(message))
            limit = MAX_ALERT_BYTES
        if len(body) > limit:
            return PushResult(Outcome.FAILED, detail=f"payload too large ({len(body)} > {limit})")
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-push-type": "voip" if voip else "alert",
            "apns-topic": topic,
            # 10: deliver now (a ring). 5: as power allows; the stop only tidies a notification.
            "apns-priority": "10" if message.kind == "ring" else "5",
            "apns-expiration": str(int(message.expires_at.timestamp())),
            "apns-collapse-id": message.collapse_id[:64],
            "content-type": "application/json",
        }
        return headers, body

    async def send(self, message: PushMessage) -> PushResult:
        if seconds_left(message.expires_at) <= 0:
            return expired_result()
        if self._signing_key() is None:
            return config_error(PROVIDER, self._key_error)
        if not DEVICE_TOKEN.match(message.token):
            return PushResult(Outcome.DEAD, detail="BadDeviceToken (malformed)")
        built = self._request(message)
        if isinstance(built, PushResult):
            return built
        headers, body = built
        return await self._post(f"/3/device/{message.token}", content=body, headers=headers)

    def _result(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        if status == 200:
            return PushResult(
                Outcome.SENT, status=status, detail=response.headers.get("apns-id", "")
            )
        data = json_body(response)
        reason = str(data.get("reason", "")) or response.reason_phrase
        if status == 410:
            return PushResult(
                Outcome.DEAD, status=status, detail=reason, dead_since=dead_since(data)
            )
        if status == 400 and reason in DEAD_REASONS:
            return PushResult(Outcome.DEAD, status=status, detail=reason)
        if status == 403:
            if reason in ("ExpiredProviderToken", "InvalidProviderToken"):
                self._token = None  # the next push signs a fresh one
            return config_error(PROVIDER, reason, status)
        if status == 429 or status >= 500:
            return transient(response, reason)
        return PushResult(Outcome.FAILED, status=status, detail=reason)


def dead_since(data: dict[str, Any]) -> datetime | None:
    """A 410's ``timestamp``: milliseconds since the epoch when the token stopped being valid."""
    try:
        return datetime.fromtimestamp(int(data["timestamp"]) / 1000, tz=UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
