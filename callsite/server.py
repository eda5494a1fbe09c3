"""The Daphne server ``manage.py serve`` runs: the graceful one, lighter per request and socket.

- POST bodies go to Django unparsed by Twisted (callsite/httpfactory.py).
- The garbage collector freezes what lives long (callsite/collector.py), so a closed socket must
  leave no reference cycle: autobahn resolves ``is_closed`` with the protocol itself, and
  Twisted's HTTP channel keeps the request it upgraded, which keeps the channel. Both are cut
  here (tests/test_socket_garbage.py).
- Daphne walks every connection every 2 s (timeouts, and a ping to each WebSocket due one) in
  one go. At 10,000 sockets a walk held the event loop for about 37 ms, and every frame due in
  that time waited behind it (issue 9). Here the walk goes in slices of ``CHECK_SLICE``
  connections, with the loop free between them: the same checks and pings, in the same 2 s.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from callsite import collector, httpfactory
from callsite.graceful import (
    GracefulCommandLineInterface,
    GracefulServer,
    WebSocketProtocol,
    reactor,
)

CHECK_SLICE = 500
CHECK_EVERY = 2.0  # seconds between walks, as in Daphne


class Server(GracefulServer):
    @property
    def http_factory(self) -> httpfactory.HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        # Daphne's run() sets its own factory here; ours leaves POST bodies to Django.
        self._http_factory = httpfactory.HTTPFactory(factory.server)

    def run(self) -> None:
        limits = settings.CALLSITE
        collector.start(
            reactor.callLater, limits["GC_FREEZE_SECONDS"], limits["GC_UNFREEZE_SECONDS"]
        )
        super().run()

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        if isinstance(protocol, WebSocketProtocol):
            # Closed: autobahn resolved ``is_closed`` with the protocol itself, a cycle.
            protocol.is_closed = None
        elif isinstance(protocol, httpfactory.WebRequest) and protocol.transport is None:
            # Upgraded to a WebSocket: the HTTP channel would hold this request, which holds
            # the channel, for as long as the socket lives and then as a cycle.
            requests = protocol.channel.requests
            if protocol in requests:
                requests.remove(protocol)

    def timeout_checker(self) -> None:
        self._check_slice(list(self.connections), 0)

    def _check_slice(self, protocols: list[Any], start: int) -> None:
        end = start + CHECK_SLICE
        for protocol in protocols[start:end]:
            if protocol in self.connections:  # not gone since the walk began
                protocol.check_timeouts()
        if end < len(protocols):
            reactor.callLater(0, self._check_slice, protocols, end)
        else:
            reactor.callLater(CHECK_EVERY, self.timeout_checker)


class CommandLineInterface(GracefulCommandLineInterface):
    """Daphne's command line (the same options), running this Server."""

    server_class = Server
