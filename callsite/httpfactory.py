"""Daphne's HTTP requests, without Twisted parsing POST bodies that Django parses again.

Twisted's ``http.Request`` parses the body of every POST with a form content type into
``request.args`` (URL-encoded and multipart uploads, all of it in memory), and to find out
whether it is one, it parses the ``Content-Type`` header of every POST with the ``email``
package, which makes two new classes each time. Daphne never reads ``request.args``: it hands
the raw body to Django, which parses forms itself. That check cost about 37 µs per POST and left
its classes for the cyclic collector (issue 9, bench/README.md "eighth round"). Twisted's own
switch turns it off: ``parsePOSTFormSubmission=False``.
"""

from __future__ import annotations

from typing import Any

from daphne import http_protocol


class WebRequest(http_protocol.WebRequest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


class HTTPFactory(http_protocol.HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 (Twisted's name)
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = WebRequest
        return protocol
