"""The /ws/ specs' one fixture: ``devices``, real sockets closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.realtime.support import Devices


@pytest_asyncio.fixture
async def devices() -> AsyncIterator[Devices]:
    """devices(user, device_id=None) -> a Device: an open socket of ``user``, past session.ready."""
    opened = Devices()
    yield opened
    await opened.close_all()
