"""`manage.py serve`: Daphne with the timer worker inside the same process (embedded default).

In production run Daphne (or Uvicorn) on ``callsite.asgi:application`` and one or more
``manage.py runworker call-timers`` beside it instead.
"""

from __future__ import annotations

import gc
import ipaddress
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(bind: str) -> bool:
    if bind.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


def bind_refusal(bind: str, *, production: bool, insecure_demo: bool) -> str | None:
    """Why the embedded default must not listen on ``bind``, or None when it may."""
    if production or insecure_demo or is_loopback(bind):
        return None
    return (
        f"Refusing to listen on {bind}: these are the embedded default settings (DEBUG on, the "
        "repository's SECRET_KEY, demo users with published passwords), which anyone who "
        "reaches this address could use. Serve on 127.0.0.1, or set CALLSITE_ENV=production "
        "(see docs/production.md), or pass --insecure-demo to expose the demo anyway "
        "(a trusted network only)."
    )


class Command(BaseCommand):
    help = "Serve callsite with Daphne; runs the timer worker in-process unless told otherwise."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--insecure-demo",
            action="store_true",
            help="Listen on a non-loopback address with the embedded (insecure) settings.",
        )
        parser.add_argument(
            "--timers",
            choices=["embedded", "external"],
            default="embedded" if settings.CALLSITE["EMBEDDED_TIMERS"] else "external",
            help="embedded: run the call-timers worker in this process.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        refusal = bind_refusal(
            options["bind"], production=settings.PRODUCTION, insecure_demo=options["insecure_demo"]
        )
        if refusal:
            raise CommandError(refusal)
        # Importing daphne.server installs Twisted's asyncio reactor; it must come first.
        # Daphne's command line, with a graceful shutdown on SIGTERM (callsite/graceful.py),
        # and lighter per request and socket (callsite/server.py).
        from callsite.server import CommandLineInterface

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
                "--websocket_connect_timeout",
                str(settings.CALLSITE["WS_CONNECT_TIMEOUT"]),
                # Daphne's own access log prints whole URLs, tokens in query strings included;
                # callsite writes its own access lines (callsite/middleware.py, ws_observe.py).
                "--verbosity",
                "0",
                "callsite.asgi:application",
            ]
        )
