"""The Redis channel layer as configured in settings survives redis-py 8's changed defaults.

redis-py 8 gives connections a 5 s read timeout (a consumer waiting longer than that for its next
message dies) and caps the async pool at 100 connections, raising instead of waiting (every
waiting consumer holds one). settings.py sets ``socket_timeout=None`` and ``max_connections``;
these specs show both matter, against the real Redis, with the layer built from settings.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from tests.realtime import redis_settings

REDIS_8 = int(redis.__version__.split(".")[0]) >= 8


def layer_config(**host_overrides: Any) -> dict[str, Any]:
    """The CONFIG the settings build for the core layer (the workers' alias) for REDIS_URL, with
    a prefix of this test's own."""
    prefix = f"callsite-test-layer-{uuid.uuid4().hex[:8]}"
    layers, workers = redis_settings.production_layers(prefix)
    config: dict[str, Any] = layers[workers]["CONFIG"]
    for host in config["hosts"]:
        host.update(host_overrides)
        for key in [k for k, v in host.items() if v is ...]:
            del host[key]
    return config


async def flush(layer: RedisChannelLayer) -> None:
    await layer.flush()
    await layer.close_pools()


async def test_settings_configure_both_traps_away() -> None:
    host = layer_config()["hosts"][0]
    assert host["socket_timeout"] is None
    assert host["max_connections"] >= 1000


async def test_a_consumer_waiting_longer_than_5_s_still_gets_its_message() -> None:
    layer = RedisChannelLayer(**layer_config())
    channel = await layer.new_channel()
    try:
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(6)
        await layer.send(channel, {"type": "call.event", "n": 1})
        assert (await asyncio.wait_for(waiting, 5))["n"] == 1
    finally:
        await flush(layer)


@pytest.mark.skipif(not REDIS_8, reason="the 5 s read timeout is redis-py 8's default only")
async def test_without_the_setting_redis_py_8_kills_a_waiting_consumer() -> None:
    layer = RedisChannelLayer(**layer_config(socket_timeout=...))  # redis-py's default
    channel = await layer.new_channel()
    try:
        with pytest.raises((redis.exceptions.TimeoutError, TimeoutError)):
            await asyncio.wait_for(layer.receive(channel), 8)
    finally:
        await flush(layer)


async def burst(layer: RedisChannelLayer) -> None:
    """400 sockets connecting at once: each joins its groups concurrently, then events go out."""
    await asyncio.gather(*(layer.group_add(f"user.{i % 7}", f"specific.x!{i}") for i in range(400)))
    await asyncio.gather(*(layer.group_send(f"user.{i}", {"type": "x"}) for i in range(7)))


def forget(prefix: str) -> None:
    r = redis.Redis.from_url(redis_settings.REDIS_URL)
    for key in r.scan_iter(f"{prefix}*", count=1000):
        r.delete(key)


async def test_a_burst_of_400_connects_does_not_exhaust_the_pool() -> None:
    layer = RedisChannelLayer(**layer_config())
    try:
        await burst(layer)
    finally:
        await layer.close_pools()
        forget(layer.prefix)


@pytest.mark.skipif(not REDIS_8, reason="the raising 100-connection pool is redis-py 8's default")
async def test_without_the_setting_redis_py_8_raises_under_the_same_burst() -> None:
    layer = RedisChannelLayer(**layer_config(max_connections=...))  # redis-py's default
    try:
        with pytest.raises(redis.exceptions.MaxConnectionsError):
            await burst(layer)
    finally:
        await layer.close_pools()
        forget(layer.prefix)
