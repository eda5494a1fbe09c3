"""`manage.py serve`: Daphne with the timer worker inside the same process (embedded default).

In production run Daphne (or Uvicorn) on ``callsite.asgi:application`` and one or more
``manage.py runworker call-timers`` beside it instead.
"""

from __future__ import annotations

import gc
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve callsite with Daphne; runs the timer worker in-process unless told otherwise."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--timers",
            choices=["embedded", "external"],
            default="embedded" if settings.CALLSITE["EMBEDDED_TIMERS"] else "external",
            help="embedded: run the call-timers worker in this process.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Importing daphne.server installs Twisted's asyncio reactor; it must come first.
        # Daphne's own command line, with a graceful shutdown on SIGTERM (callsite/graceful.py).
        from callsite.graceful import GracefulCommandLineInterface as CommandLineInterface

        # Everything imported and set up so far lives as long as the process: move it out of
        # the collector's generations, so that the full collections a busy server triggers do
        # not walk tens of thousands of long-lived objects each time.
        gc.collect()
        gc.freeze()
        # callsite.asgi starts the embedded timer worker when the reactor runs (for plain
        # `daphne` too); --timers decides whether it does for this process.
        settings.CALLSITE["EMBEDDED_TIMERS"] = options["timers"] == "embedded"
        CommandLineInterface().run(
            [
                "-b",
                options["bind"],
                "-p",
                str(options["port"]),
                "--websocket_timeout",
                "-1",
                # Daphne's own access log prints whole URLs, tokens in query strings included;
                # callsite writes its own access lines (callsite/middleware.py, ws_observe.py).
                "--verbosity",
                "0",
                "callsite.asgi:application",
            ]
        )
