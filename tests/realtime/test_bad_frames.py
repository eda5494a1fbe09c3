"""Frames no JSON parser should take down: deep nesting gets an `error`, the socket stays usable,
and nothing is logged as a failure."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.realtime.support import Devices

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("depth", [33, 5000])
async def test_deeply_nested_frames_get_a_validation_error_and_no_traceback(
    depth: int, users: dict[str, Any], devices: Devices, caplog: Any
) -> None:
    alice = await devices(users["alice"])
    caplog.set_level(logging.INFO)
    inner = '{"a":' * depth + "1" + "}" * depth
    signal = '{"type":"rtc.signal","call_id":"x","to":"bob","data":' + inner + "}"
    for frame in ("[" * depth, signal):
        await alice.send(frame)
        event = await alice.next("error")
        assert event["error"]["code"] == "validation_error", event
    await alice.ping()
    assert not [r for r in caplog.records if r.exc_info], caplog.text
