"""The delivery worker as it runs: inside the embedded worker beside the timers, woken after
each commit through the channel layer, and sleeping until the next retry is due."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from invitations import services, timers
from invitations.push import delivery, devices

from .conftest import Gateway

pytestmark = pytest.mark.django_db(transaction=True)


async def received(gateway: Gateway, count: int, timeout: float) -> float:
    """Seconds until the gateway accepted ``count`` pushes (fails the test past ``timeout``)."""
    start = time.monotonic()
    while len(gateway.received) < count:
        assert time.monotonic() - start < timeout, gateway.types()
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def embedded(push_on: Gateway, settings: Any):  # type: ignore[no-untyped-def]
    # A long rescan: only the wake-up after commit (or a retry's own due time) can be fast.
    settings.PUSH_RESCAN_SECONDS = 30
    task = asyncio.ensure_future(timers.run_embedded_worker())
    while not delivery.RUNNING:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the worker's first scan of the (empty) table
    yield push_on
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_ring_goes_out_right_after_the_invitation_commits(
    users: dict[str, Any], embedded: Gateway
) -> None:
    await database_sync_to_async(devices.register)(
        user=users["bob"], device_id="phone", provider="fcm", token="t-bob", subscription={}
    )
    await database_sync_to_async(services.invite)(inviter=users["alice"], invitees=["bob"])
    assert await received(embedded, 1, timeout=3) < 3
    assert embedded.types() == [("call.ring", "phone")]


async def test_a_retry_goes_out_when_due_without_any_wake_up(
    users: dict[str, Any], embedded: Gateway
) -> None:
    embedded.script(503)
    await database_sync_to_async(devices.register)(
        user=users["bob"], device_id="phone", provider="fcm", token="t-bob", subscription={}
    )
    await database_sync_to_async(services.invite)(inviter=users["alice"], invitees=["bob"])
    await received(embedded, 1, timeout=3)  # the 503, then the retry after its backoff
    assert embedded.types() == [("call.ring", "phone")]
