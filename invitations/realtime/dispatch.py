"""A consumer dispatch without the hop to the process's one shared sync thread."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name


class DirectDispatch:
    """Mixin for AsyncConsumer: hand each message to its handler at once.

    Channels' stock ``dispatch`` first runs ``close_old_connections()`` on the process's one shared
    sync thread, for every message, so each delivered event queues behind every other socket's
    hop to that thread, and a busy spell there holds back the timer worker too (bench/README.md,
    "Notes moved from code comments"). Consumers using this close their database connections
    where they use them: ``database_sync_to_async`` does so before and after each call, and the
    timer worker's threads do it themselves.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
