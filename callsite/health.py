"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can do its job).

Load balancers and orchestrators poll these every few seconds, so both are cheap, async (no
request thread), outside the per-process HTTP queue (callsite/asgi.py), not throttled, and
logged at DEBUG only (callsite/middleware.py).

Readiness checks three parts at once, each given ``CHECK_TIMEOUT`` seconds:

- ``database``: ``SELECT 1`` on a connection of its own;
- ``channel_layer``: a message sent to a fresh channel of this process and received back;
- ``timers``: a timer worker's heartbeat no older than twice the rescan interval
  (callsite/heartbeat.py).

A failing part answers 503 with its name, and a warning says why (once per change, then at
most once a minute, so a probe every few seconds does not flood the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from . import heartbeat

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 1.0
REPEAT_WARNING_AFTER = 60.0


class NotReadyError(Exception):
    """A part answered, and the answer was no."""


@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    # Nothing but the event loop and Django's handler: a database outage is not a reason to
    # restart this process (that is what readiness is for).
    return JsonResponse({"status": "alive"})


def _select_one() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this pool thread has no request whose end would close it


def _timers() -> None:
    why = heartbeat.problem()
    if why:
        raise NotReadyError(why)


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise NotReadyError("no channel layer is configured")
    channel = await layer.new_channel("readyz")
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "readyz.ping", "nonce": nonce})
    try:
        message = await layer.receive(channel)
    finally:
        discard = getattr(layer, "discard_channel", None)  # PubSub keeps it subscribed otherwise
        if discard is not None:
            await discard(channel)
    if message.get("nonce") != nonce:
        raise NotReadyError("the channel layer returned another message")


# A check that blocks a thread (a database or cache that stopped answering) must not leave a
# new stuck thread behind at every probe: probes share the one in flight.
_in_flight: dict[str, asyncio.Future[Any]] = {}


def _shared_thread(name: str, func: Callable[[], None]) -> Awaitable[None]:
    running = _in_flight.get(name)
    if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
        running = asyncio.ensure_future(sync_to_async(func, thread_sensitive=False)())
        _in_flight[name] = running
    return asyncio.shield(running)


async def _check(check: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except NotReadyError as exc:
        return str(exc)
    except Exception as exc:  # the type only: a driver's message may carry a host or a user
        return f"failed: {type(exc).__name__}"
    return "ok"


_last_warning: dict[str, Any] = {"failing": (), "at": 0.0}


def _report(checks: dict[str, str]) -> None:
    failing = tuple(name for name, result in checks.items() if result != "ok")
    now = time.monotonic()
    changed = failing != _last_warning["failing"]
    if failing and (changed or now - _last_warning["at"] > REPEAT_WARNING_AFTER):
        _last_warning["at"] = now
        logger.warning(
            "not ready: %s",
            "; ".join(f"{name}: {checks[name]}" for name in failing),
            extra={"failing": list(failing)},
        )
    elif not failing and changed:
        logger.warning("ready again")
    _last_warning["failing"] = failing


@require_safe
async def readyz(request: HttpRequest) -> JsonResponse:
    names = ("database", "channel_layer", "timers")
    results = await asyncio.gather(
        _check(_shared_thread("database", _select_one)),
        _check(_channel_layer()),
        _check(_shared_thread("timers", _timers)),
    )
    checks = dict(zip(names, results, strict=True))
    _report(checks)
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        response = JsonResponse(
            {"status": "not ready", "failing": failing, "checks": checks}, status=503
        )
        # Django would log every 503 probe as an ERROR; _report has said it, rate-limited.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    return JsonResponse({"status": "ready", "checks": checks})
