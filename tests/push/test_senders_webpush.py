"""Web Push sender against a local push service that checks VAPID and decrypts aes128gcm."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from invitations.push.senders import webpush as webpush_module
from invitations.push.senders.apns import APNsSender
from invitations.push.senders.base import Outcome, Sender
from invitations.push.senders.fcm import FCMSender
from invitations.push.senders.webpush import WebPushSender, generate_vapid_keys, topic_for

from .fixtures.messages import left_at, message
from .fixtures.tls import FixturePKI
from .fixtures.webpush import VapidKeys, WebPushService


@pytest.fixture
async def sender(webpush_service: WebPushService) -> AsyncIterator[WebPushSender]:
    made = WebPushSender()
    yield made
    await made.close()


async def test_a_ring_is_accepted_and_decrypts_to_the_payload(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    subscription = webpush_service.subscribe()
    push = message("webpush", subscription=subscription, seconds=30)

    result = await sender.send(push)

    assert result.outcome == Outcome.SENT, result
    assert result.status == 201
    [got] = webpush_service.received
    assert got.problems == []
    assert got.payload == push.payload
    assert got.claims["aud"] == webpush_service.url
    assert got.claims["sub"] == "mailto:ops@callsite.test"
    assert time.time() < got.claims["exp"] <= time.time() + 24 * 3600
    assert abs(int(got.headers["ttl"]) - left_at(push, got.at)) <= 1
    assert got.headers["urgency"] == "high"
    assert got.headers["topic"] == topic_for(push.collapse_id)
    assert len(got.headers["topic"]) == 32


async def test_a_stop_is_normal_urgency_with_the_rings_topic(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    subscription = webpush_service.subscribe()
    ring = message("webpush", subscription=subscription)
    stop = message("webpush", kind="stop", subscription=subscription, call_id=ring.collapse_id)

    assert (await sender.send(ring)).outcome == Outcome.SENT
    assert (await sender.send(stop)).outcome == Outcome.SENT

    first, second = webpush_service.received
    assert second.headers["urgency"] == "normal"
    assert second.payload["reason"] == "cancelled"
    assert first.headers["topic"] == second.headers["topic"]


async def test_a_raw_base64url_private_key_works_too(
    webpush_service: WebPushService, settings: object
) -> None:
    settings.WEBPUSH_VAPID_PRIVATE_KEY = webpush_service.vapid.private_raw  # type: ignore[attr-defined]
    sender = WebPushSender()
    try:
        result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    finally:
        await sender.close()
    assert result.outcome == Outcome.SENT, result


async def test_a_wrong_vapid_key_is_refused_by_the_service(
    webpush_service: WebPushService, settings: object
) -> None:
    other = VapidKeys.generate()
    settings.WEBPUSH_VAPID_PRIVATE_KEY = other.private_pem  # type: ignore[attr-defined]
    settings.WEBPUSH_VAPID_PUBLIC_KEY = other.public_b64  # type: ignore[attr-defined]
    sender = WebPushSender()
    try:
        result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    finally:
        await sender.close()
    assert result.outcome == Outcome.CONFIG_ERROR
    assert result.status == 403
    assert webpush_service.received[0].problems


async def test_a_public_key_that_is_not_the_private_keys_is_a_config_error(
    webpush_service: WebPushService, settings: object
) -> None:
    settings.WEBPUSH_VAPID_PUBLIC_KEY = VapidKeys.generate().public_b64  # type: ignore[attr-defined]
    sender = WebPushSender()
    result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    assert result.outcome == Outcome.CONFIG_ERROR
    assert webpush_service.received == []


async def test_wrong_subscription_keys_fail_decryption(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    subscription = webpush_service.subscribe()
    other = webpush_service.subscribe()
    subscription["keys"] = other["keys"]

    result = await sender.send(message("webpush", subscription=subscription))

    assert result.outcome == Outcome.FAILED
    assert any("decrypt" in p for p in webpush_service.received[0].problems)


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_is_dead(
    webpush_service: WebPushService, sender: WebPushSender, status: int
) -> None:
    webpush_service.answer(status, b"gone")
    result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    assert result.outcome == Outcome.DEAD
    assert result.status == status


async def test_an_unsubscribed_browser_answers_410(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    subscription = webpush_service.subscribe()
    webpush_service.unsubscribe(subscription)
    result = await sender.send(message("webpush", subscription=subscription))
    assert (result.outcome, result.status) == (Outcome.DEAD, 410)


async def test_429_is_retried_after_what_the_service_asks(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    webpush_service.answer(429, b"slow down", {"retry-after": "7"})
    result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    assert (result.outcome, result.status, result.retry_after) == (Outcome.RETRY, 429, 7.0)


async def test_503_is_retried(webpush_service: WebPushService, sender: WebPushSender) -> None:
    webpush_service.answer(503)
    result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    assert (result.outcome, result.status, result.retry_after) == (Outcome.RETRY, 503, None)


async def test_another_4xx_fails_for_good(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    webpush_service.answer(413, b"too big")
    result = await sender.send(message("webpush", subscription=webpush_service.subscribe()))
    assert (result.outcome, result.status) == (Outcome.FAILED, 413)


async def test_an_expired_message_is_never_sent(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    push = message("webpush", subscription=webpush_service.subscribe(), seconds=-1)
    result = await sender.send(push)
    assert (result.outcome, result.detail) == (Outcome.FAILED, "expired")
    assert webpush_service.received == []


async def test_a_payload_too_large_for_one_record_is_refused_without_a_request(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    push = message("webpush", subscription=webpush_service.subscribe(), extended_data="x" * 4000)
    result = await sender.send(push)
    assert result.outcome == Outcome.FAILED
    assert "too large" in result.detail
    assert webpush_service.received == []


async def test_an_unreachable_service_is_retried(
    webpush_service: WebPushService, sender: WebPushSender
) -> None:
    subscription = webpush_service.subscribe()
    webpush_service.stop()
    result = await sender.send(message("webpush", subscription=subscription))
    assert result.outcome == Outcome.RETRY
    assert result.status is None


async def test_the_service_enforces_the_record_limit_itself(
    webpush_service: WebPushService, sender: WebPushSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webpush_module, "MAX_PLAINTEXT", 10_000)
    push = message("webpush", subscription=webpush_service.subscribe(), extended_data="x" * 4000)
    result = await sender.send(push)
    assert (result.outcome, result.status) == (Outcome.FAILED, 413)


async def test_the_fixtures_run_as_a_process_of_their_own(tmp_path: Path, settings: Any) -> None:
    """For benchmarks: ``python -m tests.push.fixtures`` and its push.env drive real senders."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.push.fixtures", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        env = dict(line.split("=", 1) for line in (tmp_path / "push.env").read_text().splitlines())
        for name, value in env.items():
            setattr(settings, name, value)
        trust = ssl.create_default_context(cafile=env["APNS_CA_BUNDLE"])
        async with httpx.AsyncClient(verify=trust) as client:
            subscription = (await client.post(f"{urls['webpush']}/_fixture/subscribe")).json()
            senders: tuple[Sender, ...] = (WebPushSender(), APNsSender(), FCMSender())
            pushes = (
                message("webpush", subscription=subscription),
                message("apns_voip", token="ab" * 32),
                message("fcm", token="t-1"),
            )
            for sender, push in zip(senders, pushes, strict=True):
                assert (await sender.send(push)).outcome == Outcome.SENT
                await sender.close()
            for name, push in zip(("webpush", "apns", "fcm"), pushes, strict=True):
                rows = (await client.get(f"{urls[name]}/_fixture/received")).json()
                assert [r["problems"] for r in rows] == [[]] * len(rows)
                assert push.payload["call_id"] in json.dumps(rows[-1]["payload"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


async def test_generated_keys_work_as_settings(
    webpush_service: WebPushService, settings: Any
) -> None:
    private, public = generate_vapid_keys()
    settings.WEBPUSH_VAPID_PRIVATE_KEY = private
    settings.WEBPUSH_VAPID_PUBLIC_KEY = public
    sender = WebPushSender()
    try:
        result = await sender.send(
            message("webpush", subscription=webpush_service.subscribe(public))
        )
    finally:
        await sender.close()
    assert result.outcome == Outcome.SENT, result


async def test_an_https_push_service_is_trusted_through_the_ca_bundle(
    push_pki: FixturePKI, settings: Any
) -> None:
    vapid = VapidKeys.generate()
    service = WebPushService(vapid, pki=push_pki).start()
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid.private_pem
    settings.WEBPUSH_VAPID_PUBLIC_KEY = vapid.public_b64
    settings.WEBPUSH_VAPID_SUBJECT = "https://callsite.test"
    try:
        subscription = service.subscribe()
        assert subscription["endpoint"].startswith("https://127.0.0.1:")
        settings.WEBPUSH_CA_BUNDLE = str(push_pki.ca_file)
        trusting = WebPushSender()
        sent = await trusting.send(message("webpush", subscription=subscription))
        await trusting.close()
        settings.WEBPUSH_CA_BUNDLE = None
        default = WebPushSender()
        refused = await default.send(message("webpush", subscription=subscription))
        await default.close()
    finally:
        service.stop()
    assert sent.outcome == Outcome.SENT, sent
    assert service.received[0].claims["aud"] == service.url
    assert service.received[0].claims["sub"] == "https://callsite.test"
    assert refused.outcome == Outcome.CONFIG_ERROR  # the system trust does not know the test CA
    assert len(service.received) == 1
