"""The baseline: a bare Channels relay on the same stack as callsite, served by Daphne.

    python -m daphne -b 127.0.0.1 -p PORT bench.baseline_relay:application

A socket connects to ``/relay/?id=N`` and joins group ``relay.N``; every text frame it sends,
``{"to": M, ...}``, is forwarded unchanged to group ``relay.M`` through the channel layer. With
``REDIS_URL`` set the layer is channels-redis, the backend callsite's sockets use
(``CHANNEL_LAYER_BACKEND``, PubSub unless it says ``core``; two relay processes forward to each
other); otherwise the in-memory layer. No database, no auth, no state machine:
the floor that a WebSocket push through Django Channels cannot go below on this machine.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

import django
from django.conf import settings

if not settings.configured:
    redis_url = os.environ.get("REDIS_URL", "")
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "callsite-bench") + "-relay"
    if redis_url:
        hosts = [{"address": redis_url, "socket_timeout": None, "max_connections": 1000}]
        # The backend callsite's sockets use (callsite/settings/channel_layer.py).
        if os.environ.get("CHANNEL_LAYER_BACKEND", "pubsub") == "pubsub":
            layer: dict[str, Any] = {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": hosts, "prefix": prefix},
            }
        else:
            layer = {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": hosts,
                    "prefix": prefix,
                    "capacity": 5000,
                    "group_expiry": 86400,
                    "expiry": 60,
                },
            }
    else:
        # The embedded server's layer class: Channels' stock in-memory layer sweeps every
        # channel on each receive, which at 10,000 sockets made the relay lose most messages
        # and would compare the server with a baseline slowed down by something it does not do.
        layer = {
            "BACKEND": "callsite.channel_layers.CountingInMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "group_expiry": 86400, "expiry": 60},
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="baseline-relay-not-secret-" + "x" * 32,
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": layer},
        ALLOWED_HOSTS=["127.0.0.1"],
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.group = f"relay.{query.get('id', ['0'])[0]}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data='{"type": "ready"}')

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return
        target = json.loads(text_data).get("to")
        await self.channel_layer.group_send(
            f"relay.{target}", {"type": "relay.message", "text": text_data}
        )

    async def relay_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


application = RelayConsumer.as_asgi()
