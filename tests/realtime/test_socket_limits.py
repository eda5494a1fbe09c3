"""Socket limits (API.md "Limits"): 10 sockets per user, a message budget per socket, and acks
that change nothing answered from a read, never a write transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invitations import services
from invitations.models import DeviceConnection
from tests.realtime.support import Device, Devices, open_socket, token_for


@pytest.mark.django_db(transaction=True)
async def test_the_11th_socket_of_a_user_is_closed_with_4429(
    users: dict[str, Any], devices: Devices
) -> None:
    opened = [await devices(users["bob"], f"d{i}") for i in range(10)]
    key = await database_sync_to_async(token_for)(users["bob"])
    eleventh = Device(
        await open_socket(headers=[(b"authorization", f"Token {key}".encode())]), None
    )
    event = await eleventh.next()
    assert event["type"] == "error" and event["error"]["code"] == "throttled", event
    assert await eleventh.next() == {"type": "<closed>", "code": 4429}
    await eleventh.close()
    # Others are not limited by bob's sockets, and bob may open one once another closed.
    await devices(users["alice"])
    await opened[0].close()
    await asyncio.sleep(0.1)
    await devices(users["bob"], "d-again")


@pytest.mark.django_db(transaction=True)
async def test_a_flooding_socket_is_throttled_then_closed_with_4429(
    users: dict[str, Any], devices: Devices, settings: Any
) -> None:
    # The bucket's own numbers are specified in test_message_budget.py; a short flood here.
    # A slow refill, so a busy machine sending the 130 frames slowly earns no extra token.
    settings.CALLSITE = {**settings.CALLSITE, "WS_FLOOD_SECONDS": 1.0, "WS_RATE": 0.5}
    bob = await devices(users["bob"])
    for _ in range(130):
        await bob.send({"type": "ping"})
    events = [await bob.next() for _ in range(101)]
    assert [e["type"] for e in events[:100]] == ["pong"] * 100  # the burst
    assert events[100]["type"] == "error" and events[100]["error"]["code"] == "throttled"
    assert await bob.nothing(0.3) is None  # the rest dropped, told once
    closed = None
    for _ in range(300):  # keep flooding: 300 pings over ~1.5 s
        await bob.send({"type": "ping"})
        await asyncio.sleep(0.005)
        if not await bob.comm.receive_nothing(0):
            event = await bob.raw()
            if event["type"] == "<closed>":
                closed = event
                break
    assert closed == {"type": "<closed>", "code": 4429}


@pytest.mark.django_db(transaction=True)
async def test_a_socket_within_its_budget_is_never_throttled(
    users: dict[str, Any], devices: Devices
) -> None:
    bob = await devices(users["bob"])
    for _ in range(60):  # 20 a second for 3 s
        await bob.send({"type": "ping"})
        assert (await bob.next())["type"] == "pong"
        await asyncio.sleep(0.05)


WRITES = ("BEGIN", "INSERT", "UPDATE", "DELETE")


class Writes:
    """Counts the statements that write or take SQLite's write lock (BEGIN IMMEDIATE) since
    the last ``clear``: what a stream of acks must not do."""

    def __init__(self, captured: CaptureQueriesContext) -> None:
        self.captured, self.start = captured, 0

    def __call__(self) -> int:
        new = self.captured.captured_queries[self.start :]
        return sum(q["sql"].lstrip().upper().startswith(WRITES) for q in new)

    def clear(self) -> None:
        self.start = len(self.captured.captured_queries)


@contextmanager
def writes() -> Iterator[Writes]:
    with CaptureQueriesContext(connection) as captured:
        yield Writes(captured)


@pytest.mark.django_db
def test_acks_that_change_nothing_take_no_write_transaction(users: dict[str, Any]) -> None:
    import uuid

    from invitations.errors import CallError

    result = services.invite(inviter=users["alice"], invitees=["bob", "carol"])
    call_id = uuid.UUID(result.call["id"])
    with writes() as written:
        for who, cid in [
            ("bob", uuid.uuid4()),  # no such call
            ("dave", call_id),  # not a participant
            ("alice", call_id),  # the inviter
        ]:
            with pytest.raises(CallError):
                services.acknowledge(actor=users[who], call_id=cid)
        assert written() == 0
        services.acknowledge(actor=users["bob"], call_id=call_id, device_id="p")
        assert written() > 0  # the first ack moves bob to received: a write
        written.clear()
        again = services.acknowledge(actor=users["bob"], call_id=call_id, device_id="q")
        assert written() == 0  # already received: answered from a read
        assert {p["user"]: p["state"] for p in again["participants"]}["bob"] == "received"
        services.reject(actor=users["carol"], call_id=call_id)
        written.clear()
        with pytest.raises(CallError) as refused:
            services.acknowledge(actor=users["carol"], call_id=call_id)
        assert refused.value.code == "invalid_state"
        assert written() == 0


@pytest.mark.django_db(transaction=True)
async def test_simultaneous_connects_of_one_user_never_leave_more_than_10_open(
    users: dict[str, Any],
) -> None:
    """The count and the registration are one step under the user's lock: 25 connects at the
    same moment (the consumers' database threads run them side by side) leave exactly 10."""
    key = await database_sync_to_async(token_for)(users["bob"])
    headers = [(b"authorization", f"Token {key}".encode())]
    comms = await asyncio.gather(
        *(open_socket(query=f"?device_id=s{i}", headers=headers) for i in range(25))
    )
    sockets = [Device(comm, None) for comm in comms]
    try:
        firsts = await asyncio.gather(*(s.next(timeout=20) for s in sockets))
        kinds = [f["type"] for f in firsts]
        assert kinds.count("session.ready") == 10, kinds
        assert kinds.count("error") == 15, kinds
        for sock, first in zip(sockets, firsts, strict=True):
            if first["type"] == "error":
                assert first["error"]["code"] == "throttled", first
                assert await sock.next(timeout=10) == {"type": "<closed>", "code": 4429}
            else:
                await sock.ping()
        rows = await database_sync_to_async(
            lambda: DeviceConnection.objects.filter(user=users["bob"]).count()
        )()
        assert rows == 10
    finally:
        for sock in sockets:
            await sock.close()
