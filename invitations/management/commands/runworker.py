"""`manage.py runworker call-timers`: Channels' runworker, with instances started eagerly, a
graceful stop, and the workers' channel layer (``WORKER_CHANNEL_LAYER``) unless ``--layer`` says.

On SIGTERM or SIGINT the worker stops taking new work and exits once the batch it is expiring is
done: the batch runs in a thread of the loop's executor, which ``asyncio.run`` waits for while
the loop still runs, so the batch commits and its events are published. Deadlines it had not
reached stay in the database; the next worker loads them when it starts. A batch stuck past
``HARD_EXIT_SECONDS`` (a database that stopped answering) does not keep the process alive.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from channels.management.commands.runworker import Command as ChannelsRunworker
from django.conf import settings
from django.core.management.base import CommandParser

from callsite import lifecycle
from invitations.timers import EagerWorker

logger = logging.getLogger("invitations.timers")

HARD_EXIT_SECONDS = 9.5


class GracefulWorker(EagerWorker):
    def run(self) -> None:
        self.signalled_at: float | None = None
        asyncio.run(self._run_until_signal())
        if self.signalled_at is not None:
            elapsed = time.monotonic() - self.signalled_at
            logger.warning("timer worker stopped %.2f s after the signal", elapsed)

    async def _run_until_signal(self) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None

        def stop(sig: signal.Signals) -> None:
            if self.signalled_at is not None:
                return
            self.signalled_at = time.monotonic()
            lifecycle.start_draining()
            lifecycle.exit_after(HARD_EXIT_SECONDS)
            logger.warning("%s: timer worker finishing its batch", sig.name)
            main.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop, sig)
        try:
            await self.arun()
        except asyncio.CancelledError:
            if self.signalled_at is None:
                raise
            # The schedulers' tasks are cancelled next by asyncio.run; a batch already handed to
            # a thread runs to its commit, and asyncio.run waits for that thread.


class Command(ChannelsRunworker):
    worker_class = GracefulWorker

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        # The workers' channels live on their own layer with Redis (settings/channel_layer.py).
        parser.set_defaults(layer=settings.WORKER_CHANNEL_LAYER)
