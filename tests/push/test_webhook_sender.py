"""The webhook gateway sender against a real receiver that verifies Standard Webhooks
signatures (tests/push/conftest.py): body, headers, and how each answer maps to an outcome."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from invitations.push.senders.base import Outcome, PushMessage
from invitations.push.senders.webhook import WebhookSender, message_id

from .conftest import Gateway


def message(token: str = "tok-1", provider: str = "apns_voip") -> PushMessage:
    return PushMessage(
        provider=provider,
        kind="ring",
        payload={"v": 1, "type": "call.ring", "call_id": "c-1"},
        expires_at=datetime.now(UTC) + timedelta(seconds=30),
        collapse_id="c-1",
        token=token,
        app_id="org.example.app",
        device_id="iphone",
    )


@pytest.fixture
async def sender(gateway: Gateway):  # type: ignore[no-untyped-def]
    s = WebhookSender(url=gateway.url, secret=gateway.secret)
    yield s
    await s.close()


async def test_a_push_is_signed_and_carries_the_notification_and_the_device(
    gateway: Gateway, sender: WebhookSender
) -> None:
    sent = message()
    result = await sender.send(sent)
    assert result.outcome == Outcome.SENT and result.status == 200
    [got] = gateway.received
    assert got.body == {
        "notification": {"v": 1, "type": "call.ring", "call_id": "c-1"},
        "devices": [
            {
                "device_id": "iphone",
                "provider": "apns_voip",
                "token": "tok-1",
                "app_id": "org.example.app",
            }
        ],
    }
    assert got.headers["webhook-id"] == message_id(sent)
    assert gateway.forged == 0


async def test_a_wrong_secret_fails_verification_and_is_retried(
    gateway: Gateway,
) -> None:
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    sender = WebhookSender(url=gateway.url, secret=other)
    try:
        result = await sender.send(message())
    finally:
        await sender.close()
    assert result.outcome == Outcome.RETRY and result.status == 401  # API.md: retried
    assert gateway.forged == 1 and gateway.received == []


async def test_a_rejected_token_is_dead(gateway: Gateway, sender: WebhookSender) -> None:
    gateway.script(200, {"rejected": ["tok-1"]})
    assert (await sender.send(message())).outcome == Outcome.DEAD


async def test_a_rejected_list_without_our_token_is_sent(
    gateway: Gateway, sender: WebhookSender
) -> None:
    gateway.script(202, {"rejected": ["tok-2"]})
    assert (await sender.send(message())).outcome == Outcome.SENT


async def test_429_is_retried_after_its_retry_after(
    gateway: Gateway, sender: WebhookSender
) -> None:
    gateway.script(429, retry_after="7")
    result = await sender.send(message())
    assert result.outcome == Outcome.RETRY and result.retry_after == 7 and result.status == 429


async def test_503_is_retried(gateway: Gateway, sender: WebhookSender) -> None:
    gateway.script(503)
    result = await sender.send(message())
    assert result.outcome == Outcome.RETRY and result.retry_after is None


async def test_another_client_error_is_retried(gateway: Gateway, sender: WebhookSender) -> None:
    gateway.script(400, {"error": "bad"})
    assert (await sender.send(message())).outcome == Outcome.RETRY  # API.md: other answers too


async def test_a_gateway_that_is_down_is_retried() -> None:
    sender = WebhookSender(url="http://127.0.0.1:9/push", secret="whsec_" + "A" * 32)
    try:
        result = await sender.send(message())
    finally:
        await sender.close()
    assert result.outcome == Outcome.RETRY and result.status is None and result.detail


def test_each_push_has_its_own_id_and_every_retry_the_same() -> None:
    assert message_id(message()) != message_id(message(token="tok-2"))
    first = message()
    assert message_id(first) == message_id(first)
