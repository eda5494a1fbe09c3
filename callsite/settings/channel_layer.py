"""The channel layers: in-memory by default, Redis (REDIS_URL) across processes.

With Redis there are two aliases:

- ``default`` carries what sockets hear (call events to user groups, presence): channels-redis'
  PubSub layer, which hands each message to the subscribed processes at once instead of queueing
  it in Redis for each channel (issue 9, bench/README.md "sixth round": in the production
  topology 1.17x the full call cycles and 0.79x the invite p99 of the core layer).
  ``CHANNEL_LAYER_BACKEND=core`` puts it back on the core layer.
- ``workers`` carries the timer and push workers' channels (``manage.py runworker``): the core
  layer, whose messages wait in Redis while a worker restarts, where PubSub would drop them.

Embedded, one in-memory layer carries both (``WORKER_CHANNEL_LAYER`` names it).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "callsite")
CHANNEL_LAYER_BACKEND = os.environ.get("CHANNEL_LAYER_BACKEND", "pubsub")
if CHANNEL_LAYER_BACKEND not in ("pubsub", "core"):
    raise ImproperlyConfigured(
        f"CHANNEL_LAYER_BACKEND must be 'pubsub' or 'core', not {CHANNEL_LAYER_BACKEND!r}"
    )


def _redis_hosts() -> list[dict[str, Any]]:
    return [
        {
            "address": url,
            # redis-py 8 defaults to a 5 s read timeout, which kills receivers that wait longer
            # than that for a message; and to a 100-connection async pool that raises instead of
            # waiting under load.
            "socket_timeout": None,
            "max_connections": int(os.environ.get("REDIS_MAX_CONNECTIONS", "1000")),
        }
        for url in REDIS_URL.split(",")
    ]


def _core_layer() -> dict[str, Any]:
    return {
        "BACKEND": "callsite.channel_layers.CountingRedisChannelLayer",
        "CONFIG": {
            "hosts": _redis_hosts(),
            "prefix": CHANNEL_LAYER_PREFIX,
            # Per-channel queue size before group_send drops (counted and logged).
            "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "5000")),
            # Sockets stay open for days: group membership must outlive them.
            "group_expiry": int(os.environ.get("CHANNEL_LAYER_GROUP_EXPIRY", str(30 * 86400))),
            "expiry": 60,
        },
    }


if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": (
            {
                "BACKEND": "callsite.channel_layers.CountingRedisPubSubChannelLayer",
                "CONFIG": {"hosts": _redis_hosts(), "prefix": CHANNEL_LAYER_PREFIX},
            }
            if CHANNEL_LAYER_BACKEND == "pubsub"
            else _core_layer()
        ),
        "workers": _core_layer(),
    }
    WORKER_CHANNEL_LAYER = "workers"
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer, counting its drops (see callsite/channel_layers.py).
            "BACKEND": "callsite.channel_layers.CountingInMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "group_expiry": 30 * 86400, "expiry": 60},
        }
    }
    WORKER_CHANNEL_LAYER = "default"
