"""The /ws/ specs' fixtures: ``devices``, real sockets closed after each test; and
``production_layers``, the channel layers as production builds them, on the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from channels.layers import channel_layers

from tests.realtime import redis_settings
from tests.realtime.support import Devices


@pytest_asyncio.fixture
async def devices() -> AsyncIterator[Devices]:
    """devices(user, device_id=None) -> a Device: an open socket of ``user``, past session.ready."""
    opened = Devices()
    yield opened
    await opened.close_all()


@pytest.fixture
def production_layers(settings: Any) -> Iterator[None]:
    """The sockets' layer (PubSub) and the workers' (core) from the real settings for Redis,
    under a prefix of this test's own."""
    prefix = f"callsite-test-layers-{uuid.uuid4().hex[:8]}"
    layers, workers = redis_settings.production_layers(prefix)
    settings.CHANNEL_LAYERS, settings.WORKER_CHANNEL_LAYER = layers, workers
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
