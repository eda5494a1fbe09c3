"""WebSocket fuzzing: random and malformed frames of every type, at sizes up to the limit, from a
signed-in user. The socket answers each with an event or an `error` of a documented code, or is
closed with a documented close code; nothing is a server error and nothing logs a traceback."""

from __future__ import annotations

import json
import logging
import random
import uuid
from typing import Any

import pytest

from tests.realtime.support import Devices, invite

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 64 * 1024
ERROR_CODES = {"validation_error", "not_found", "invalid_state", "permission_denied", "throttled"}
CLOSE_CODES = {1009, 4009, 4400, 4429}
TYPES = ["call.ack", "rtc.signal", "ping", "presence.subscribe", "session.ready", "", "x" * 300]


def junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, 1e308, -0.0])
    if kind == 2:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if kind == 3:
        return rng.choice(["\x00", "\ud800", "\u202e", "a" * 2000, str(uuid.uuid4())])
    if kind == 4:
        return rng.randrange(-(10**20), 10**20)
    if kind in (5, 6):
        return [junk(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
    return {
        rng.choice(["type", "call_id", "to", "data", "users", "x"]): junk(rng, depth + 1)
        for _ in range(rng.randrange(0, 6))
    }


def frame(rng: random.Random, call_id: str) -> str | bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        return "".join(rng.choice('{}[]":,0123abc\\ ') for _ in range(rng.randrange(0, 300)))
    if kind == 2:  # nesting past any parser's recursion limit, within the size limit
        depth = rng.randrange(30, 20000)
        return rng.choice(
            ["[" * depth, '{"type":"rtc.signal","data":' + "[" * depth + "]" * depth + "}"]
        )
    message: dict[str, Any] = {"type": rng.choice(TYPES)}
    for key in ("call_id", "to", "data", "users"):
        if rng.random() < 0.6:
            message[key] = rng.choice([junk(rng), call_id, "bob", {"candidate": None}, ["bob"]])
    text = json.dumps(message)
    if rng.random() < 0.15:  # padded to a random size up to the limit
        pad = rng.randrange(0, LIMIT - len(text) - 20)
        message["pad"] = "p" * pad
        text = json.dumps(message)
    return text


async def test_random_frames_never_break_the_server(
    users: dict[str, Any], devices: Devices, caplog: Any, settings: Any
) -> None:
    # The budget is specified on its own (test_message_budget.py); here every frame is handled.
    settings.CALLSITE = {**settings.CALLSITE, "WS_RATE": 100000, "WS_BURST": 100000}
    caplog.set_level(logging.INFO)
    result = await invite(inviter=users["bob"], invitees=["alice"])
    call_id = result.call["id"]
    rng = random.Random(20261130)
    alice = await devices(users["alice"], "fuzz")
    answered = closed = 0
    for i in range(400):
        data = frame(rng, call_id)
        if isinstance(data, bytes):
            await alice.comm.send_to(bytes_data=data)
        else:
            await alice.send(data)
        if i % 20 == 19:
            await alice.send({"type": "ping"})
        while not await alice.comm.receive_nothing(0.05):
            event = await alice.raw()
            if event["type"] == "<closed>":
                assert event["code"] in CLOSE_CODES, event
                closed += 1
                await alice.close()
                alice = await devices(users["alice"], "fuzz")
                break
            if event["type"] == "error":
                assert event["error"]["code"] in ERROR_CODES, event
            answered += 1
    await alice.ping()
    # Frames at and just over the limit.
    await alice.send("[" + " " * (LIMIT - 2) + "]")
    assert (await alice.next("error"))["error"]["code"] == "validation_error"
    await alice.send("[" + " " * (LIMIT - 1) + "]")
    assert (await alice.next())["code"] in {1009, 4009}
    assert answered > 300
    failures = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]
