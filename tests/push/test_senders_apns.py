"""APNs sender against a local HTTP/2 + TLS provider API that checks the ES256 provider token."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from invitations.push.senders import apns as apns_module
from invitations.push.senders.apns import APNsSender
from invitations.push.senders.base import Outcome

from .fixtures.apns import APNsKey, APNsServer
from .fixtures.messages import message

TOKEN = "a1" * 32


@pytest.fixture
async def sender(apns_server: APNsServer) -> AsyncIterator[APNsSender]:
    made = APNsSender()
    yield made
    await made.close()


async def test_a_voip_ring_goes_over_http2_with_a_valid_provider_token(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    push = message("apns_voip", token=TOKEN, seconds=30)

    result = await sender.send(push)

    assert result.outcome == Outcome.SENT, result
    [got] = apns_server.received
    assert got.problems == []
    assert got.http_version == "2"
    assert got.key == TOKEN
    assert got.claims["iss"] == apns_server.key.team_id
    assert got.headers["apns-push-type"] == "voip"
    assert got.headers["apns-topic"] == "org.callsite.app.voip"
    assert got.headers["apns-priority"] == "10"
    assert got.headers["apns-collapse-id"] == push.collapse_id
    # The deadline itself, as a unix time (Apple drops the push after it).
    assert abs(int(got.headers["apns-expiration"]) - push.expires_at.timestamp()) <= 1
    assert got.payload == push.payload


async def test_an_alert_ring_carries_aps_and_the_payload(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    push = message("apns", token=TOKEN)

    result = await sender.send(push)

    assert result.outcome == Outcome.SENT, result
    [got] = apns_server.received
    assert got.problems == []
    assert got.headers["apns-push-type"] == "alert"
    assert got.headers["apns-topic"] == "org.callsite.app"
    assert got.headers["apns-priority"] == "10"
    aps = got.payload.pop("aps")
    assert aps["alert"] == {"title": "Alice", "body": "Incoming video call"}
    assert aps["thread-id"] == push.collapse_id
    assert got.payload == push.payload


async def test_a_stop_is_an_alert_that_replaces_the_ring(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    push = message("apns", kind="stop", token=TOKEN)

    result = await sender.send(push)

    assert result.outcome == Outcome.SENT, result
    [got] = apns_server.received
    assert got.headers["apns-priority"] == "5"
    assert got.headers["apns-collapse-id"] == push.collapse_id
    assert got.payload["aps"]["alert"]["body"] == "Missed call"
    assert got.payload["reason"] == "cancelled"


async def test_concurrent_pushes_share_one_http2_connection(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    tokens = [f"{n:064x}" for n in range(40)]
    results = await asyncio.gather(
        *(sender.send(message("apns_voip", token=token)) for token in tokens)
    )
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert sorted(r.key for r in apns_server.received) == sorted(tokens)
    assert all(r.problems == [] for r in apns_server.received)
    assert len({r.client for r in apns_server.received}) == 1


async def test_a_stop_is_never_sent_as_a_voip_push(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    result = await sender.send(message("apns_voip", kind="stop", token=TOKEN))
    assert result.outcome == Outcome.FAILED
    assert apns_server.received == []


async def test_the_device_app_id_overrides_the_topic(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    apns_server.bundle_id = "org.example.other"
    result = await sender.send(message("apns_voip", token=TOKEN, app_id="org.example.other"))
    assert result.outcome == Outcome.SENT, result
    assert apns_server.received[0].headers["apns-topic"] == "org.example.other.voip"


async def test_a_topic_the_token_is_not_for_kills_the_device(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    apns_server.bundle_id = "org.example.other"
    result = await sender.send(message("apns", token=TOKEN))
    assert (result.outcome, result.status, result.detail) == (
        Outcome.DEAD,
        400,
        "DeviceTokenNotForTopic",
    )


async def test_the_provider_token_is_reused_not_signed_per_push(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    for _ in range(3):
        assert (await sender.send(message("apns_voip", token=TOKEN))).outcome == Outcome.SENT
    tokens = {r.headers["authorization"] for r in apns_server.received}
    assert len(tokens) == 1


async def test_an_old_provider_token_is_renewed(
    apns_server: APNsServer, sender: APNsSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await sender.send(message("apns_voip", token=TOKEN))).outcome == Outcome.SENT
    first = sender.provider_token()
    later = time.time() + apns_module.TOKEN_MAX_AGE + 1
    monkeypatch.setattr(apns_module.time, "time", lambda: later)
    assert sender.provider_token() != first


async def test_a_key_apns_does_not_know_is_a_config_error(
    apns_server: APNsServer, settings: Any, tmp_path: Any
) -> None:
    settings.APNS_KEY_FILE = str(APNsKey().write_p8(tmp_path / "other.p8"))
    sender = APNsSender()
    try:
        result = await sender.send(message("apns_voip", token=TOKEN))
    finally:
        await sender.close()
    assert (result.outcome, result.status, result.detail) == (
        Outcome.CONFIG_ERROR,
        403,
        "InvalidProviderToken",
    )
    assert apns_server.received[0].problems


async def test_a_server_outside_the_ca_bundle_is_not_trusted(
    apns_server: APNsServer, settings: Any
) -> None:
    settings.APNS_CA_BUNDLE = None  # the system trust does not know the test CA
    sender = APNsSender()
    try:
        result = await sender.send(message("apns_voip", token=TOKEN))
    finally:
        await sender.close()
    assert result.outcome == Outcome.CONFIG_ERROR
    assert result.detail.startswith("TLS")
    assert apns_server.received == []


async def test_an_unreachable_apns_is_retried(apns_server: APNsServer, sender: APNsSender) -> None:
    apns_server.stop()
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)


async def test_410_is_dead_since_its_timestamp(apns_server: APNsServer, sender: APNsSender) -> None:
    apns_server.gone(TOKEN, at_ms=1_767_225_600_123)
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert (result.outcome, result.status, result.detail) == (Outcome.DEAD, 410, "Unregistered")
    assert result.dead_since == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


async def test_a_scripted_answer_only_hits_its_token(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    apns_server.gone(TOKEN)
    other = await sender.send(message("apns_voip", token="b2" * 32))
    mine = await sender.send(message("apns_voip", token=TOKEN))
    assert (other.outcome, mine.outcome) == (Outcome.SENT, Outcome.DEAD)


@pytest.mark.parametrize("reason", ["BadDeviceToken", "DeviceTokenNotForTopic"])
async def test_400_about_the_token_is_dead(
    apns_server: APNsServer, sender: APNsSender, reason: str
) -> None:
    apns_server.answer(400, {"reason": reason})
    result = await sender.send(message("apns", token=TOKEN))
    assert (result.outcome, result.status, result.detail) == (Outcome.DEAD, 400, reason)
    assert result.dead_since is None


async def test_another_400_fails_for_good(apns_server: APNsServer, sender: APNsSender) -> None:
    apns_server.answer(400, {"reason": "BadCollapseId"})
    result = await sender.send(message("apns", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.FAILED, 400)


@pytest.mark.parametrize("reason", ["ExpiredProviderToken", "InvalidProviderToken"])
async def test_403_is_a_config_error_and_the_next_push_signs_afresh(
    apns_server: APNsServer, sender: APNsSender, reason: str
) -> None:
    apns_server.answer(403, {"reason": reason})
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert (result.outcome, result.status, result.detail) == (Outcome.CONFIG_ERROR, 403, reason)
    assert sender._token is None


async def test_429_is_retried_after_what_apple_asks(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    apns_server.answer(429, {"reason": "TooManyRequests"}, {"retry-after": "12"})
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert (result.outcome, result.status, result.retry_after) == (Outcome.RETRY, 429, 12.0)
    assert result.detail == "TooManyRequests"


async def test_503_is_retried(apns_server: APNsServer, sender: APNsSender) -> None:
    apns_server.answer(503, {"reason": "ServiceUnavailable"})
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.RETRY, 503)


async def test_a_voip_payload_over_5120_bytes_is_refused_without_a_request(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    result = await sender.send(message("apns_voip", token=TOKEN, extended_data="x" * 5200))
    assert result.outcome == Outcome.FAILED
    assert "too large" in result.detail
    assert apns_server.received == []


async def test_a_voip_payload_just_under_5120_bytes_is_sent(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    push = message("apns_voip", token=TOKEN, extended_data="")
    size = len(apns_module.compact_json(push.payload))
    push = message("apns_voip", token=TOKEN, extended_data="x" * (5120 - size))
    assert len(apns_module.compact_json(push.payload)) == 5120
    result = await sender.send(push)
    assert result.outcome == Outcome.SENT, result


async def test_the_fixture_enforces_the_limit_itself(
    apns_server: APNsServer, sender: APNsSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the sender's own check, the provider answers 413: the test can fail both ways.
    monkeypatch.setattr(apns_module, "MAX_VOIP_BYTES", 10_000)
    result = await sender.send(message("apns_voip", token=TOKEN, extended_data="x" * 5200))
    assert (result.outcome, result.status, result.detail) == (
        Outcome.FAILED,
        413,
        "PayloadTooLarge",
    )


async def test_an_expired_message_is_never_sent(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    result = await sender.send(message("apns_voip", token=TOKEN, seconds=-0.5))
    assert (result.outcome, result.detail) == (Outcome.FAILED, "expired")
    assert apns_server.received == []


async def test_a_malformed_token_never_reaches_the_url(
    apns_server: APNsServer, sender: APNsSender
) -> None:
    result = await sender.send(message("apns_voip", token="../../3/device/abcd"))
    assert result.outcome == Outcome.DEAD
    assert apns_server.received == []


async def test_missing_key_settings_are_a_config_error(settings: Any) -> None:
    settings.APNS_KEY_FILE = ""
    sender = APNsSender()
    result = await sender.send(message("apns_voip", token=TOKEN))
    assert result.outcome == Outcome.CONFIG_ERROR


def test_one_sender_serves_successive_event_loops(apns_server: APNsServer) -> None:
    sender = APNsSender()
    for _ in range(2):  # e.g. async_to_sync: each call may run in a loop of its own
        result = asyncio.run(sender.send(message("apns_voip", token=TOKEN)))
        assert result.outcome == Outcome.SENT, result
    asyncio.run(sender.close())
    assert len({r.client for r in apns_server.received}) == 2
    # The client of the first loop was dropped, not closed (its loop was gone): collect its
    # sockets now so that the fixture's connection ends and the server stops at once.
    gc.collect()


async def test_a_missing_ca_bundle_is_a_config_error(
    apns_server: APNsServer, settings: Any
) -> None:
    settings.APNS_CA_BUNDLE = "/nonexistent/ca.pem"
    sender = APNsSender()
    result = await sender.send(message("apns_voip", token=TOKEN))
    await sender.close()
    assert result.outcome == Outcome.CONFIG_ERROR
    assert "CA bundle" in result.detail
