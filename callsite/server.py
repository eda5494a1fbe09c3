"""The Daphne server ``manage.py serve`` runs: the graceful one, lighter per request and socket.

- POST bodies go to Django unparsed by Twisted (callsite/httpfactory.py).
- Daphne walks every connection every 2 s (timeouts, and a ping to each WebSocket due one) in
  one go. At 10,000 sockets a walk held the event loop for about 37 ms, and every frame due in
  that time waited behind it (issue 9). Here the walk goes in slices of ``CHECK_SLICE``
  connections, with the loop free between them: the same checks and pings, in the same 2 s.
"""

from __future__ import annotations

from typing import Any

from callsite import httpfactory
from callsite.graceful import GracefulCommandLineInterface, GracefulServer, reactor

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
