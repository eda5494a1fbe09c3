"""Push without the internet.

- The provider fixture servers (Web Push, APNs, FCM): ``tests/push/fixtures/plugin.py``.
- A webhook gateway on 127.0.0.1 that checks what an operator's would, and settings that send
  every native push there (``gateway``, ``push_on``). The receiver verifies each request with the
  ``standardwebhooks`` package (a forged or unsigned one is answered 401 and recorded as such),
  keeps what it accepted, and answers from a script: ``gateway.script(200, {"rejected": [...]})``,
  ``gateway.script(429, retry_after="1")``, ``gateway.script(503)``; unscripted requests get
  ``200 {}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from invitations.push.delivery import DeliveryWorker
from tests.push.fixtures.plugin import (  # noqa: F401
    apns_server,
    fcm_rsa_key,
    fcm_server,
    push_pki,
    webpush_service,
)


@dataclass
class Received:
    at: float  # time.time() when it arrived
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def notification(self) -> dict[str, Any]:
        value: dict[str, Any] = self.body["notification"]
        return value

    @property
    def device(self) -> dict[str, Any]:
        value: dict[str, Any] = self.body["devices"][0]
        return value


@dataclass
class Gateway:
    secret: str
    url: str = ""
    received: list[Received] = field(default_factory=list)
    forged: int = 0
    _script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, status: int, body: dict[str, Any] | None = None, **headers: str) -> None:
        with self._lock:
            self._script.append(
                (status, body or {}, {k.replace("_", "-"): v for k, v in headers.items()})
            )

    def answer(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            return self._script.pop(0) if self._script else (200, {}, {})

    def types(self) -> list[tuple[str, str]]:
        """(type, device_id) of every accepted push, in order of arrival."""
        return [(r.notification["type"], r.device["device_id"]) for r in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        end = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < end:
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    gw = Gateway(secret=secret)
    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = verifier.verify(raw, headers)
            except WebhookVerificationError:
                gw.forged += 1
                self._reply(401, {"error": "bad signature"}, {})
                return
            status, reply, extra = gw.answer()
            if 200 <= status < 300:
                gw.received.append(Received(time.time(), body, headers))
            self._reply(status, reply, extra)

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/push"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def push_on(settings: Any, gateway: Gateway) -> Gateway:
    """Push configured: every apns, apns_voip and fcm push goes to the gateway."""
    settings.PUSH_WEBHOOK_URL = gateway.url
    settings.PUSH_WEBHOOK_SECRET = gateway.secret
    settings.PUSH_ACK_GRACE = 0.5
    settings.PUSH_RETRY_BASE = 0.2
    settings.PUSH_RETRY_MAX = 0.4
    return gateway


def deliver() -> int:
    """One pass of a fresh delivery worker: send whatever is due now; how many it tried."""

    async def once() -> int:
        worker = DeliveryWorker()
        try:
            return await worker.run_once()
        finally:
            await worker.close()

    return asyncio.run(once())
