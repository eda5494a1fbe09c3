"""Daphne with a graceful shutdown: SIGTERM or SIGINT drains the process within 10 s.

Daphne's own handling stops the reactor at once: open sockets are dropped without a close
frame, in-flight requests are cut, and a request or socket handler still running in a thread
may then wait for ever on the stopped event loop (``async_to_sync`` from the outbox), so the
interpreter never exits (issue 11). Here a signal starts a drain instead:

1. stop listening: the balancer (nginx) sends new connections to the other processes;
2. mark the process as draining (callsite/lifecycle.py): consumers leave devices and calls as
   they are in the database, so the devices resume on another process through ``session.ready``;
3. close every open WebSocket with 1012 (service restart): clients reconnect elsewhere;
4. wait until every request in flight and every socket's application instance has finished,
   for at most ``DRAIN_SECONDS``;
5. release what the process held (``lifecycle.on_release``: its device rows, so its users do not
   count as connected until another process's sweep; by now most devices are back elsewhere),
   starting no new piece of that work after ``RELEASE_BY`` and waiting for it until
   ``RELEASE_WAIT`` at the latest;
6. mark the process as stopped (``lifecycle.publishing_allowed()`` turns false: nothing is
   handed to a loop that is about to stop), and stop the reactor.

If anything still holds the process ``HARD_EXIT_SECONDS`` after the signal, a watchdog ends it,
so a unit's ``TimeoutStopSec`` (deploy/systemd) never has to SIGKILL it. A second signal stops at
once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

# daphne.server installs Twisted's asyncio reactor: it must be imported before the reactor.
from daphne.cli import CommandLineInterface  # isort:skip
from daphne.server import Server  # isort:skip
from autobahn.exception import Disconnected  # noqa: E402
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol  # noqa: E402
from daphne.ws_protocol import WebSocketProtocol  # noqa: E402
from twisted.internet import reactor as _reactor  # noqa: E402

from callsite import lifecycle  # noqa: E402

logger = logging.getLogger(__name__)
# Twisted types the reactor module as its interfaces (unbound methods); this is the instance.
reactor: Any = _reactor

DRAIN_SECONDS = 8.0
IDLE_SETTLE_SECONDS = 0.3
RELEASE_BY = 7.5  # seconds after the signal: no release work starts later than this
RELEASE_WAIT = 8.8  # ... and the drain waits for it until then (the watchdog ends it at 9.5)
HARD_EXIT_SECONDS = 9.5
CLOSE_SERVICE_RESTART = 1012


_on_drain: list[Callable[[], Any]] = []


def on_drain(callback: Callable[[], Any]) -> None:
    """Run ``callback`` (on the event loop) when the drain starts, e.g. to stop a timer worker."""
    _on_drain.append(callback)


class GracefulServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["signal_handlers"] = False  # ours, below, instead of Twisted's reactor.stop
        super().__init__(*args, **kwargs)
        self.ports: list[Any] = []
        self.drain_started: float | None = None
        self.idle_since: float | None = None
        self.release: asyncio.Future[None] | None = None

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        try:
            await super().handle_reply(protocol, message)
        except Disconnected:
            # A frame for a socket this drain is closing: the device resyncs on reconnect.
            if self.drain_started is None:
                raise

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self.ports.append(port)

    def run(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            # In a context of its own: the signal interrupts whatever runs, maybe a socket's
            # handler, whose log context (request id, device) the drain must not inherit.
            name = signal.Signals(signum).name
            reactor.callFromThread(contextvars.Context().run, self.begin_shutdown, name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        super().run()

    def begin_shutdown(self, why: str = "shutdown") -> None:
        if self.drain_started is not None:
            logger.warning("second %s: stopping at once", why)
            self._stop()
            return
        self.drain_started = time.monotonic()
        lifecycle.start_draining()
        lifecycle.exit_after(HARD_EXIT_SECONDS)
        for port in self.ports:
            port.stopListening()
        sockets = 0
        for protocol in list(self.connections):
            if isinstance(protocol, WebSocketProtocol):
                sockets += self._close(protocol)
        logger.warning(
            "%s: draining (stopped listening, closing %d sockets with %d)",
            why,
            sockets,
            CLOSE_SERVICE_RESTART,
        )
        for callback in _on_drain:
            try:
                callback()
            except Exception:  # one hook must not stop the drain
                logger.exception("drain hook %r failed", callback)
        reactor.callLater(0.05, self._wait_until_drained)

    @staticmethod
    def _close(protocol: WebSocketProtocol) -> int:
        if protocol.state == AutobahnProtocol.STATE_OPEN:
            # sendClose accepts only 1000 and 3000-4999 from applications; 1012 is the code the
            # protocol has for exactly this (RFC 6455 registry: "Service Restart").
            protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, reasonUtf8=b"service restart")
            return 1
        if protocol.state == AutobahnProtocol.STATE_CONNECTING:
            protocol.dropConnection(abort=True)
        return 0

    def _busy(self) -> int:
        return sum(
            1
            for details in list(self.connections.values())
            if (instance := details.get("application_instance")) is not None and not instance.done()
        )

    def _describe_busy(self, limit: int) -> list[str]:
        """Where the first few unfinished application instances wait (for the log)."""
        out = []
        for protocol, details in list(self.connections.items()):
            instance = details.get("application_instance")
            if instance is None or instance.done():
                continue
            out.append(f"{type(protocol).__name__} waiting in {_awaiting(instance)}")
            if len(out) >= limit:
                break
        return out

    def _wait_until_drained(self) -> None:
        assert self.drain_started is not None
        busy = self._busy()
        elapsed = time.monotonic() - self.drain_started
        now = time.monotonic()
        if busy:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now
        # Idle for a moment, not just now: a request whose connection was accepted before the
        # port closed becomes an application instance only once Daphne has parsed it.
        settled = self.idle_since is not None and now - self.idle_since >= IDLE_SETTLE_SECONDS
        if not settled and elapsed < DRAIN_SECONDS:
            reactor.callLater(0.05, self._wait_until_drained)
            return
        if busy:
            logger.warning(
                "drain: %d requests or sockets still busy after %.1f s: %s",
                busy,
                elapsed,
                "; ".join(self._describe_busy(3)),
            )
        else:
            logger.warning("drained in %.2f s", elapsed)
        self.release = asyncio.ensure_future(lifecycle.release(self.drain_started + RELEASE_BY))
        self._wait_for_release()

    def _wait_for_release(self) -> None:
        assert self.drain_started is not None
        elapsed = time.monotonic() - self.drain_started
        if self.release is not None and not self.release.done():
            if elapsed < RELEASE_WAIT:
                reactor.callLater(0.05, self._wait_for_release)
                return
            logger.warning("release unfinished after %.1f s: stopping anyway", elapsed)
        elif self.release is not None and (
            self.release.cancelled() or self.release.exception() is not None
        ):
            logger.warning("release failed: %r", self.release)
        else:
            logger.warning("released in %.2f s", elapsed)
        self._stop()

    def _stop(self) -> None:
        lifecycle.mark_stopped()
        if reactor.running:
            reactor.stop()


def _awaiting(task: Any) -> str:
    """The innermost few coroutines a task waits in (get_stack shows only the outermost)."""
    names = []
    coro = task.get_coro()
    for _ in range(30):
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            names.append(type(coro).__name__)
            break
        names.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if coro is None:
            break
    return " > ".join(names[-4:])


class GracefulCommandLineInterface(CommandLineInterface):
    """Daphne's command line (the same options), running the GracefulServer."""

    server_class = GracefulServer
