"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm (RFC 8188, RFC 8291).

pywebpush does the encryption (``WebPusher.encode``, on http_ece) and py-vapid signs the VAPID JWT;
the POST itself goes through an ``httpx.AsyncClient``. pywebpush's own senders are either
synchronous (requests) or open an aiohttp session per push; one shared async client keeps
connections to each push service alive and never blocks the event loop. Encrypting one payload
(one ECDH and an HKDF) and signing one JWT take well under a millisecond, so they stay inline.

Settings: ``WEBPUSH_VAPID_PRIVATE_KEY`` (PEM, or base64url of the raw 32-byte scalar or of DER),
``WEBPUSH_VAPID_PUBLIC_KEY`` (served to browsers; checked against the private key),
``WEBPUSH_VAPID_SUBJECT`` (``mailto:`` or ``https:``), ``WEBPUSH_CA_BUNDLE`` (optional).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher

from .base import Outcome, PushMessage, PushResult
from .common import (
    HTTPSender,
    compact_json,
    config_error,
    expired_result,
    seconds_left,
    transient,
)

PROVIDER = "webpush"
# A push service must accept 4,096 bytes of encrypted record (RFC 8291 §4); aes128gcm adds a
# 86-byte header (salt, record size, key id of 65) plus one delimiter byte and a 16-byte tag.
MAX_PLAINTEXT = 4096 - 86 - 1 - 16
# VAPID tokens may live 24 h; ours live 12 h and are re-signed an hour before they end.
VAPID_LIFETIME = 12 * 3600
VAPID_REFRESH_BEFORE = 3600
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def topic_for(collapse_id: str) -> str:
    """RFC 8030 §5.4: at most 32 base64url characters; the same for a call's ring and stop."""
    if TOPIC.match(collapse_id):
        return collapse_id
    try:
        return uuid.UUID(collapse_id).hex
    except ValueError:
        digest = hashlib.sha256(collapse_id.encode()).digest()[:24]
        return base64.urlsafe_b64encode(digest).decode()


def load_vapid(private_key: str) -> Vapid:
    text = private_key.strip()
    if "-----BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
        return Vapid(key)
    return Vapid.from_string(text)


def public_key_b64(vapid: Vapid) -> str:
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_vapid_keys() -> tuple[str, str]:
    """A new key pair for the settings: (WEBPUSH_VAPID_PRIVATE_KEY as one base64url line,
    WEBPUSH_VAPID_PUBLIC_KEY)."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    private = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return private, public_key_b64(Vapid(key))


class WebPushSender(HTTPSender):
    """Web Push to whichever push service a subscription's endpoint names."""

    provider = PROVIDER
    settings_prefix = "WEBPUSH"
    options = ("vapid_private_key", "vapid_public_key", "vapid_subject")

    def __init__(self, **given: str | None) -> None:
        super().__init__(**given)
        self._vapid: Vapid | None = None
        self._vapid_error = ""
        self._tokens: dict[str, tuple[str, float]] = {}  # origin -> (Authorization, its exp)

    def _signer(self) -> Vapid | None:
        cfg = self.config
        if self._vapid is None and not self._vapid_error:
            try:
                if not cfg["vapid_private_key"] or not cfg["vapid_subject"]:
                    raise ValueError("WEBPUSH_VAPID_PRIVATE_KEY and _SUBJECT must be set")
                vapid = load_vapid(cfg["vapid_private_key"])
                mine = public_key_b64(vapid)
                if cfg["vapid_public_key"] and cfg["vapid_public_key"].rstrip("=") != mine:
                    # Browsers subscribed with the public key: a mismatch fails every push.
                    raise ValueError("WEBPUSH_VAPID_PUBLIC_KEY is not the private key's")
                self._vapid = vapid
            except (ValueError, TypeError, VapidException) as exc:
                self._vapid_error = f"VAPID key: {exc}"
        return self._vapid

    def _authorization(self, vapid: Vapid, origin: str) -> str:
        now = time.time()
        cached = self._tokens.get(origin)
        if cached and cached[1] - now > VAPID_REFRESH_BEFORE:
            return cached[0]
        exp = int(now) + VAPID_LIFETIME
        header = vapid.sign({"aud": origin, "exp": exp, "sub": self.config["vapid_subject"]})[
            "Authorization"
        ]
        self._tokens[origin] = (header, exp)
        return str(header)

    async def send(self, message: PushMessage) -> PushResult:
        left = seconds_left(message.expires_at)
        if left <= 0:
            return expired_result()
        vapid = self._signer()
        if vapid is None:
            return config_error(PROVIDER, self._vapid_error)
        endpoint = str(message.subscription.get("endpoint", ""))
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            return PushResult(Outcome.FAILED, detail="subscription has no usable endpoint")
        plaintext = compact_json(message.payload)
        if len(plaintext) > MAX_PLAINTEXT:
            return PushResult(Outcome.FAILED, detail="payload too large")
        try:
            body = WebPusher(message.subscription).encode(plaintext, "aes128gcm")["body"]
        except Exception as exc:  # any malformed key, in whichever library it trips
            return PushResult(Outcome.FAILED, detail=f"subscription keys: {exc!r}"[:200])
        try:
            authorization = self._authorization(vapid, f"{parts.scheme}://{parts.netloc}")
        except VapidException as exc:  # e.g. a subject that is neither mailto: nor https:
            return config_error(PROVIDER, f"VAPID claims: {exc}")
        headers = {
            "authorization": authorization,
            "ttl": str(int(left)),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "urgency": "high" if message.kind == "ring" else "normal",
            "topic": topic_for(message.collapse_id),
        }
        return await self._post(endpoint, content=body, headers=headers)

    def _result(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        detail = response.text[:200]
        if 200 <= status < 300:
            return PushResult(Outcome.SENT, status=status)
        if status in (404, 410):
            return PushResult(Outcome.DEAD, status=status, detail=detail or "gone")
        if status == 429 or status >= 500:
            return transient(response, detail)
        if status in (401, 403):
            # The push service refused our VAPID token (or the key the browser subscribed with).
            return config_error(PROVIDER, detail or "VAPID refused", status)
        return PushResult(Outcome.FAILED, status=status, detail=detail)
