"""The channel layers as the real settings build them for Redis, for tests on the real Redis."""

from __future__ import annotations

import copy
import importlib
import os
from typing import Any

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


def production_layers(prefix: str) -> tuple[dict[str, Any], str]:
    """``CHANNEL_LAYERS`` and ``WORKER_CHANNEL_LAYER`` for REDIS_URL, under ``prefix``."""
    import callsite.settings.channel_layer as module

    saved = {k: os.environ.get(k) for k in ("REDIS_URL", "CHANNEL_LAYER_PREFIX")}
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    try:
        real = importlib.reload(module)
        return copy.deepcopy(real.CHANNEL_LAYERS), real.WORKER_CHANNEL_LAYER
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        importlib.reload(module)
