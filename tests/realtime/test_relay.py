"""rtc.signal goes only between accepted participants, to the device that accepted, in order."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.support import (
    Device,
    Devices,
    accept,
    end,
    invite,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def drain(*devs: Device) -> None:
    for d in devs:
        await d.nothing(
            0.1,
            skip=(
                "presence.changed",
                "call.invitation_received",
                "call.user_state_changed",
                "call.ended",
            ),
        )


async def in_call(users: dict[str, Any], devices: Devices, bob_device: str = "phone"):
    """alice (device a1) calls bob, who has a phone and a laptop and accepts on ``bob_device``."""
    alice = await devices(users["alice"], "a1")
    phone = await devices(users["bob"], "phone")
    laptop = await devices(users["bob"], "laptop")
    call = (await invite(inviter=users["alice"], invitees=["bob"], device_id="a1")).call
    await accept(actor=users["bob"], call_id=call["id"], device_id=bob_device)
    await drain(alice, phone, laptop)
    return call, alice, phone, laptop


def signal(call_id: str, to: str, data: Any) -> dict[str, Any]:
    return {"type": "rtc.signal", "call_id": call_id, "to": to, "data": data}


async def test_signals_go_to_the_device_that_accepted_in_order(
    users: dict[str, Any], devices: Devices
) -> None:
    call, alice, phone, laptop = await in_call(users, devices)

    for i in range(50):
        await alice.send(signal(call["id"], "bob", {"candidate": {"candidate": f"c{i}"}}))

    got = [await phone.next("rtc.signal") for _ in range(50)]
    assert [g["data"]["candidate"]["candidate"] for g in got] == [f"c{i}" for i in range(50)]
    assert got[0] == {
        "type": "rtc.signal",
        "call_id": call["id"],
        "from": "alice",
        "from_device": "a1",
        "data": {"candidate": {"candidate": "c0"}},
    }
    await laptop.nothing()
    await alice.nothing()


async def test_answers_go_back_to_the_device_the_inviter_started_with(
    users: dict[str, Any], devices: Devices
) -> None:
    call, alice, phone, laptop = await in_call(users, devices)
    other_alice = await devices(users["alice"], "a2")
    answer = {"description": {"type": "answer", "sdp": "v=0"}}

    await phone.send(signal(call["id"], "alice", answer))

    got = await alice.next("rtc.signal")
    assert (got["from"], got["from_device"], got["data"]) == ("bob", "phone", answer)
    await other_alice.nothing()


async def test_without_an_accepting_device_every_device_gets_the_signal(
    users: dict[str, Any], devices: Devices
) -> None:
    call, alice, phone, laptop = await in_call(users, devices, bob_device="")
    await alice.send(signal(call["id"], "bob", {"candidate": None}))
    for d in (phone, laptop):
        assert (await d.next("rtc.signal"))["data"] == {"candidate": None}


async def assert_refused(
    sender: Device, message: dict[str, Any], code: str, *peers: Device
) -> None:
    await sender.send(message)
    event = await sender.next("error")
    assert event["error"]["code"] == code, event
    assert event["request_type"] == "rtc.signal"
    for peer in peers:
        await peer.nothing()
    await sender.ping()


async def test_a_ringing_invitee_can_neither_send_nor_receive_signals(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"], "a1")
    bob = await devices(users["bob"], "phone")
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await drain(alice, bob)
    offer = {"description": {"type": "offer", "sdp": "v=0"}}
    await assert_refused(bob, signal(call["id"], "alice", offer), "invalid_state", alice)
    await assert_refused(alice, signal(call["id"], "bob", offer), "invalid_state", bob)


async def test_strangers_and_foreign_calls_are_not_found(
    users: dict[str, Any], devices: Devices
) -> None:
    call, alice, phone, laptop = await in_call(users, devices)
    mallory = await devices(users["mallory"])
    data = {"candidate": None}
    await assert_refused(mallory, signal(call["id"], "bob", data), "not_found", phone, laptop)
    await assert_refused(alice, signal(call["id"], "mallory", data), "not_found", mallory)
    await assert_refused(alice, signal(call["id"], "nobody", data), "not_found")
    await assert_refused(
        alice, signal("2d3c9e2e-1111-4111-8111-111111111111", "bob", data), "not_found", phone
    )
    await assert_refused(alice, signal("garbage", "bob", data), "not_found", phone)


@pytest.mark.parametrize(
    "broken",
    [
        {"call_id": None},
        {"to": None},
        {"to": ""},
        {"to": 5},
        {"to": "alice"},  # yourself
        {"data": None},
        {"data": "offer"},
        {"data": [1]},
    ],
)
async def test_malformed_signals_are_validation_errors(
    users: dict[str, Any], devices: Devices, broken: dict[str, Any]
) -> None:
    call, alice, phone, laptop = await in_call(users, devices)
    message = {**signal(call["id"], "bob", {"candidate": None}), **broken}
    message = {k: v for k, v in message.items() if v is not None}
    await assert_refused(alice, message, "validation_error", phone, laptop)


async def test_no_signals_once_the_call_ended(users: dict[str, Any], devices: Devices) -> None:
    call, alice, phone, laptop = await in_call(users, devices)
    await end(actor=users["alice"], call_id=call["id"])
    await drain(alice, phone, laptop)
    await assert_refused(
        alice, signal(call["id"], "bob", {"candidate": None}), "invalid_state", phone
    )
