"""The channel layer: in-memory by default, Redis (REDIS_URL) across processes."""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "callsite")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "callsite.channel_layers.CountingRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": url,
                        # redis-py 8 defaults to a 5 s read timeout, which kills receivers that
                        # wait longer than that for a message; and to a 100-connection async pool
                        # that raises instead of waiting under load.
                        "socket_timeout": None,
                        "max_connections": int(os.environ.get("REDIS_MAX_CONNECTIONS", "1000")),
                    }
                    for url in REDIS_URL.split(",")
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                # Per-channel queue size before group_send drops (counted and logged).
                "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "5000")),
                # Sockets stay open for days: group membership must outlive them.
                "group_expiry": int(os.environ.get("CHANNEL_LAYER_GROUP_EXPIRY", str(30 * 86400))),
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer, counting its drops (see callsite/channel_layers.py).
            "BACKEND": "callsite.channel_layers.CountingInMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "group_expiry": 30 * 86400, "expiry": 60},
        }
    }
