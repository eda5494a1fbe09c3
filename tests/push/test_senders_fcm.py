"""FCM sender against a local HTTP v1 API and its OAuth2 token endpoint (both over TLS)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from invitations.push.senders.base import Outcome
from invitations.push.senders.fcm import SCOPE, FCMSender, fcm_data

from .fixtures.fcm import FCMServer, fcm_error
from .fixtures.messages import left_at, message

TOKEN = "fcm-registration-token-1"


@pytest.fixture
async def sender(fcm_server: FCMServer) -> AsyncIterator[FCMSender]:
    made = FCMSender()
    yield made
    await made.close()


async def test_a_ring_is_a_high_priority_data_message_with_the_time_left(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    push = message("fcm", token=TOKEN, seconds=30)

    result = await sender.send(push)

    assert result.outcome == Outcome.SENT, result
    assert result.detail.startswith("projects/callsite-test/messages/")
    [token_request] = fcm_server.token_requests
    assert token_request.problems == []
    assert token_request.claims["scope"] == SCOPE
    assert token_request.claims["iss"] == fcm_server.client_email
    sent = fcm_server.received[-1]
    assert sent.problems == []
    assert sent.path == "/v1/projects/callsite-test/messages:send"
    android = sent.payload["android"]
    assert android["priority"] == "HIGH"
    assert android["collapse_key"] == push.collapse_id
    # The time left when the push left (not a fixed 30: a loaded machine takes its time).
    assert abs(int(android["ttl"].removesuffix("s")) - left_at(push, sent.at)) <= 1
    assert "notification" not in sent.payload
    data = sent.payload["data"]
    assert data == fcm_data(push.payload)
    decoded = {
        k: (v if k in ("type", "call_id", "call_type", "deadline") else json.loads(v))
        for k, v in data.items()
    }
    assert decoded == push.payload


def test_data_values_are_strings_and_nested_fields_json() -> None:
    data = fcm_data(
        {"v": 1, "type": "call.ring", "inviter": {"username": "a"}, "reason": "timeout"}
    )
    assert data == {
        "v": "1",
        "type": "call.ring",
        "inviter": '{"username":"a"}',
        "reason": "timeout",
    }


async def test_the_access_token_is_cached_until_it_expires(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    for n in range(3):
        result = await sender.send(message("fcm", token=f"{TOKEN}-{n}"))
        assert result.outcome == Outcome.SENT
    assert len(fcm_server.token_requests) == 1
    assert len({r.headers["authorization"] for r in fcm_server.received if r.key != "token"}) == 1


async def test_a_short_lived_access_token_is_refreshed(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    # google-auth refreshes a few minutes before expiry; a 60-second token is already "expired".
    fcm_server.token_lifetime = 60
    for _ in range(2):
        assert (await sender.send(message("fcm", token=TOKEN))).outcome == Outcome.SENT
    assert len(fcm_server.token_requests) == 2


async def test_an_unknown_service_account_key_is_refused_at_the_token_endpoint(
    fcm_server: FCMServer, settings: Any, tmp_path: Path
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = tmp_path / "other.json"
    account.write_text(json.dumps(fcm_server.service_account_json(private_key=other_key)))
    settings.FCM_SERVICE_ACCOUNT_FILE = str(account)
    sender = FCMSender()
    try:
        result = await sender.send(message("fcm", token=TOKEN))
    finally:
        await sender.close()
    assert result.outcome == Outcome.CONFIG_ERROR
    assert fcm_server.token_requests[0].problems
    assert [r for r in fcm_server.received if r.key != "token"] == []


async def test_a_revoked_access_token_is_a_config_error_then_refreshed(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    assert (await sender.send(message("fcm", token=TOKEN))).outcome == Outcome.SENT
    fcm_server.revoke_access_tokens()

    refused = await sender.send(message("fcm", token=TOKEN))
    again = await sender.send(message("fcm", token=TOKEN))

    assert (refused.outcome, refused.status) == (Outcome.CONFIG_ERROR, 401)
    assert again.outcome == Outcome.SENT
    assert len(fcm_server.token_requests) == 2


async def test_unregistered_is_dead(fcm_server: FCMServer, sender: FCMSender) -> None:
    fcm_server.unregister(TOKEN)
    other = await sender.send(message("fcm", token="someone-else"))
    result = await sender.send(message("fcm", token=TOKEN))
    assert other.outcome == Outcome.SENT
    assert (result.outcome, result.status, result.detail) == (Outcome.DEAD, 404, "UNREGISTERED")


async def test_an_invalid_token_argument_is_dead(fcm_server: FCMServer, sender: FCMSender) -> None:
    body = fcm_error(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    )
    fcm_server.answer(400, body)
    result = await sender.send(message("fcm", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.DEAD, 400)


async def test_another_invalid_argument_fails_for_good(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    fcm_server.answer(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "bad ttl"))
    result = await sender.send(message("fcm", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.FAILED, 400)


async def test_403_is_a_config_error(fcm_server: FCMServer, sender: FCMSender) -> None:
    fcm_server.answer(403, fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"))
    result = await sender.send(message("fcm", token=TOKEN))
    assert (result.outcome, result.status, result.detail) == (
        Outcome.CONFIG_ERROR,
        403,
        "SENDER_ID_MISMATCH",
    )


async def test_429_is_retried_after_what_fcm_asks(fcm_server: FCMServer, sender: FCMSender) -> None:
    fcm_server.answer(
        429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), {"retry-after": "30"}
    )
    result = await sender.send(message("fcm", token=TOKEN))
    assert (result.outcome, result.status, result.retry_after) == (Outcome.RETRY, 429, 30.0)


async def test_503_is_retried(fcm_server: FCMServer, sender: FCMSender) -> None:
    fcm_server.answer(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"))
    result = await sender.send(message("fcm", token=TOKEN))
    assert (result.outcome, result.status) == (Outcome.RETRY, 503)


async def test_an_expired_message_is_never_sent(fcm_server: FCMServer, sender: FCMSender) -> None:
    result = await sender.send(message("fcm", token=TOKEN, seconds=-1))
    assert (result.outcome, result.detail) == (Outcome.FAILED, "expired")
    assert fcm_server.received == []


async def test_data_over_4096_bytes_is_refused_without_a_request(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    result = await sender.send(message("fcm", token=TOKEN, extended_data="x" * 4100))
    assert result.outcome == Outcome.FAILED
    assert fcm_server.received == []


async def test_the_token_refresh_does_not_block_the_event_loop(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    fcm_server.token_delay = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    result = await sender.send(message("fcm", token=TOKEN))
    task.cancel()
    assert result.outcome == Outcome.SENT
    # google-auth's blocking refresh ran in a thread: the loop ticked all through the 0.3 s.
    assert ticks >= 15, ticks


async def test_an_unreachable_token_endpoint_is_retried(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    fcm_server.stop()
    result = await sender.send(message("fcm", token=TOKEN))
    assert result.outcome == Outcome.RETRY


def test_one_sender_serves_successive_event_loops(fcm_server: FCMServer) -> None:
    sender = FCMSender()
    for _ in range(2):
        result = asyncio.run(sender.send(message("fcm", token=TOKEN)))
        assert result.outcome == Outcome.SENT, result
    asyncio.run(sender.close())
    assert len(fcm_server.token_requests) == 1
    # Closed, then used again: credentials and their pinned-CA session are made afresh.
    assert asyncio.run(sender.send(message("fcm", token=TOKEN))).outcome == Outcome.SENT
    asyncio.run(sender.close())
    assert len(fcm_server.token_requests) == 2
    # The client of the first loop was dropped, not closed (its loop was gone): collect its
    # sockets now so that the fixture's connection ends and the server stops at once.
    gc.collect()


async def test_the_device_app_id_restricts_the_package(
    fcm_server: FCMServer, sender: FCMSender
) -> None:
    result = await sender.send(message("fcm", token=TOKEN, app_id="org.callsite.android"))
    assert result.outcome == Outcome.SENT
    assert fcm_server.received[-1].payload["android"]["restricted_package_name"] == (
        "org.callsite.android"
    )
