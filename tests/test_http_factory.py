"""The served HTTP requests leave POST bodies to Django (callsite/httpfactory.py).

Twisted's request would parse a form POST into ``request.args``, and the Content-Type of every
POST with the ``email`` package, work that Daphne throws away. Unit level: Daphne's real request
and channel over Twisted's in-memory transport, with a stand-in for Daphne's server object.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web import http

from callsite.httpfactory import HTTPFactory

FORM = b"username=alice&password=callsite-demo"


class Server:
    """What Daphne's request asks of its server, recording what the application is handed."""

    proxy_forwarded_address_header = None
    root_path = ""
    request_buffer_size = 8192

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.bodies: list[bytes] = []

    def protocol_connected(self, request: Any) -> None:
        self.requests.append(request)

    def protocol_disconnected(self, request: Any) -> None:
        pass

    def create_application(self, request: Any, scope: dict[str, Any]) -> Any:
        server = self

        class Queue:
            def put_nowait(self, message: dict[str, Any]) -> None:
                server.bodies.append(message.get("body", b""))

        return Queue()


def post(server: Server, content_type: bytes, body: bytes) -> Any:
    channel = HTTPFactory(server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 8000))
    channel.makeConnection(StringTransport())
    channel.dataReceived(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: example.com\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    (request,) = server.requests
    return request


@pytest.mark.parametrize(
    "content_type",
    [b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x", b"application/json"],
)
def test_a_post_body_reaches_the_application_whole_and_unparsed(
    content_type: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parsed(line: bytes) -> bytes:
        raise AssertionError("Twisted parsed the Content-Type of a POST")

    monkeypatch.setattr(http, "_parseContentType", parsed)
    server = Server()
    request = post(server, content_type, FORM)
    assert server.bodies == [FORM]  # Django gets the body as sent, and parses it itself
    assert request.args == {}  # Twisted did not parse it into args


def test_the_served_process_builds_its_requests_with_this_factory() -> None:
    from daphne.http_protocol import HTTPFactory as DaphneFactory

    from callsite.server import Server

    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.http_factory = DaphneFactory(server)  # what Daphne's Server.run does
    assert isinstance(server.http_factory, HTTPFactory)
    assert server.http_factory.server is server
