"""Bad client messages get an `error` event and the socket stays open; huge frames close it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from invitations.realtime.protocol import MAX_FRAME_BYTES
from tests.realtime.support import (
    Devices,
    accept,
    end,
    invite,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_error(event: dict[str, Any], code: str) -> dict[str, Any]:
    assert event["type"] == "error", event
    assert event["error"]["code"] == code, event
    assert isinstance(event["error"]["message"], str) and event["error"]["message"]
    return event["error"]


async def test_ping_gets_pong(users: dict[str, Any], devices: Devices) -> None:
    bob = await devices(users["bob"])
    await bob.send({"type": "ping"})
    assert await bob.next() == {"type": "pong"}


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("{not json", "frame"),
        ("[1, 2]", "frame"),
        ('"call.ack"', "frame"),
        ("{}", "type"),
        ('{"type": 7}', "type"),
        ('{"type": "call.dance"}', "type"),
        ('{"type": "call.accept", "call_id": "x"}', "type"),
    ],
)
async def test_malformed_or_unknown_messages_get_a_validation_error(
    users: dict[str, Any], devices: Devices, frame: str, field: str
) -> None:
    bob = await devices(users["bob"])
    await bob.send(frame)
    error = assert_error(await bob.next(), "validation_error")
    assert field in error["details"]
    await bob.ping()


async def test_binary_frames_get_an_error(users: dict[str, Any], devices: Devices) -> None:
    bob = await devices(users["bob"])
    await bob.comm.send_to(bytes_data=b'{"type": "ping"}')
    assert_error(await bob.next(), "validation_error")
    await bob.ping()


async def test_ack_without_call_id_is_a_validation_error(
    users: dict[str, Any], devices: Devices
) -> None:
    bob = await devices(users["bob"])
    await bob.send({"type": "call.ack"})
    event = await bob.next()
    assert assert_error(event, "validation_error")["details"] == {
        "call_id": ["This field is required."]
    }
    assert event["request_type"] == "call.ack"
    await bob.ping()


@pytest.mark.parametrize("call_id", ["not-a-uuid", str(uuid.uuid4()), 42])
async def test_ack_of_an_unknown_call_is_not_found(
    users: dict[str, Any], devices: Devices, call_id: Any
) -> None:
    bob = await devices(users["bob"])
    await bob.send({"type": "call.ack", "call_id": call_id})
    assert_error(await bob.next(), "not_found")
    await bob.ping()


async def test_ack_of_someone_elses_call_is_not_found_and_changes_nothing(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    mallory = await devices(users["mallory"])
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await alice.next("call.user_state_changed")

    await mallory.send({"type": "call.ack", "call_id": call["id"]})

    event = await mallory.next()
    assert_error(event, "not_found")
    assert event["call_id"] == call["id"]
    await alice.nothing()
    await mallory.ping()


async def test_the_inviter_cannot_ack_their_own_call(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await alice.next("call.user_state_changed")
    await alice.send({"type": "call.ack", "call_id": call["id"]})
    assert_error(await alice.next(), "permission_denied")
    await alice.ping()


async def test_ack_after_accepting_or_on_an_ended_call_is_invalid_state(
    users: dict[str, Any], devices: Devices
) -> None:
    bob = await devices(users["bob"])
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await accept(actor=users["bob"], call_id=call["id"])
    await bob.next("call.invitation_received")
    await bob.next("call.user_state_changed")
    await bob.next("call.user_state_changed")
    await bob.send({"type": "call.ack", "call_id": call["id"]})
    assert_error(await bob.next(), "invalid_state")

    await end(actor=users["alice"], call_id=call["id"])
    await bob.next("call.ended")
    await bob.send({"type": "call.ack", "call_id": call["id"]})
    assert_error(await bob.next(), "invalid_state")
    await bob.ping()


async def test_a_frame_of_exactly_64_kib_is_read(users: dict[str, Any], devices: Devices) -> None:
    bob = await devices(users["bob"])
    padding = MAX_FRAME_BYTES - len(json.dumps({"type": "ping", "pad": ""}))
    frame = json.dumps({"type": "ping", "pad": "x" * padding})
    assert len(frame.encode()) == MAX_FRAME_BYTES
    await bob.send(frame)
    assert (await bob.next())["type"] == "pong"


@pytest.mark.parametrize("char", ["x", "é"])
async def test_a_frame_over_64_kib_closes_the_socket_with_1009(
    users: dict[str, Any], devices: Devices, char: str
) -> None:
    bob = await devices(users["bob"])
    # Measured in UTF-8 bytes, not characters: 33,000 "é" are 66,000 bytes.
    count = MAX_FRAME_BYTES + 1 if char == "x" else MAX_FRAME_BYTES // 2 + 500
    await bob.send(json.dumps({"type": "ping", "pad": char * count}, ensure_ascii=False))
    closed = await bob.next()
    assert closed == {"type": "<closed>", "code": 1009}
