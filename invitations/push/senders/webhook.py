"""The webhook gateway: every native push (apns, apns_voip, fcm) POSTed to the operator's URL.

For operators who run their own push stack (API.md, "Webhook gateway"), in the manner of a
Matrix push gateway. Each push is one request for one device, signed per the Standard Webhooks
spec with ``PUSH_WEBHOOK_SECRET``; one request per device keeps the answer's meaning plain
(a device is either rejected or not) and lets each device retry on its own.

Body: ``{"notification": <payload>, "devices": [{"device_id", "provider", "token", "app_id"}]}``.
A 2xx answer may carry ``{"rejected": [token, ...]}``: a rejected token is DEAD. 429 and 5xx
(and connection errors) are RETRY, honouring ``Retry-After``; 401/403 mean our secret is not
the one the gateway expects (CONFIG_ERROR); any other answer is FAILED.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from .base import Outcome, PushMessage, PushResult
from .common import parse_retry_after, verify_for

TIMEOUT = httpx.Timeout(10.0, connect=5.0)

logger = logging.getLogger(__name__)


def message_id(message: PushMessage) -> str:
    """The same id for every retry of one push (receivers dedupe on it), distinct per push:
    a re-invitation into the same call has another deadline, hence another id."""
    key = "|".join(
        [message.collapse_id, message.kind, message.provider, message.token]
        + [message.expires_at.isoformat()]
    )
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


class WebhookSender:
    """Sends apns, apns_voip and fcm pushes to ``url``, signed with ``secret`` (whsec_...)."""

    def __init__(self, *, url: str, secret: str, ca_bundle: str = "") -> None:
        self.url = url
        self.webhook = Webhook(secret)
        # Built by the delivery worker in the loop it sends from (one client per worker).
        self.client = httpx.AsyncClient(timeout=TIMEOUT, verify=verify_for(ca_bundle))

    def body(self, message: PushMessage) -> str:
        device = {
            "device_id": message.device_id,
            "provider": message.provider,
            "token": message.token,
            "app_id": message.app_id,
        }
        return json.dumps(
            {"notification": message.payload, "devices": [device]}, separators=(",", ":")
        )

    async def send(self, message: PushMessage) -> PushResult:
        body = self.body(message)
        msg_id = message_id(message)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.webhook.sign(msg_id, now, body),
        }
        try:
            response = await self.client.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return PushResult(Outcome.RETRY, detail=f"{type(exc).__name__}: {exc}"[:200])
        status = response.status_code
        if 200 <= status < 300:
            if message.token in _rejected(response):
                return PushResult(Outcome.DEAD, status=status, detail="rejected by the gateway")
            return PushResult(Outcome.SENT, status=status)
        if status in (401, 403):
            logger.error(
                "push: the webhook gateway refused our credentials (status %s); check "
                "PUSH_WEBHOOK_SECRET. Retrying until the deadline.",
                status,
            )
        # API.md: any other answer is retried with backoff until the deadline, honouring
        # Retry-After (the gateway is the operator's own: a 4xx may be a deploy in progress).
        wait = parse_retry_after(response.headers.get("retry-after"))
        return PushResult(Outcome.RETRY, status=status, retry_after=wait, detail=_text(response))

    async def close(self) -> None:
        await self.client.aclose()


def _rejected(response: httpx.Response) -> list[str]:
    """The ``rejected`` tokens of a 2xx answer; an empty or non-JSON body rejects nothing."""
    try:
        data: Any = response.json()
    except ValueError:
        return []
    rejected = data.get("rejected") if isinstance(data, dict) else None
    return [t for t in rejected if isinstance(t, str)] if isinstance(rejected, list) else []


def _text(response: httpx.Response) -> str:
    return response.text[:200]
