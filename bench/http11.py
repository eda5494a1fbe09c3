"""A minimal keep-alive HTTP/1.1 client over asyncio streams, for the load generators.

On a 2-core machine the load generator shares the CPU with the server it measures, and httpx
spends several times more CPU per request than this, which would be taken away from the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any


class HttpError(Exception):
    pass


class HttpPool:
    """Keep-alive connections to one server; one request at a time on each connection."""

    def __init__(self, base: str) -> None:
        host, _, port = base.partition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes, float]:
        """Returns (status, body, monotonic time at which the request was written)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            sent_at = time.monotonic()
            try:
                writer.write(head + payload)
                status, data, keep = await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                writer.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: retry on a new one
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, data, sent_at
        raise HttpError("unreachable")

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed")
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise HttpError(f"bad status line {line!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        keep = True
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.lower() == b"close":
                keep = False
        if chunked:
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif length is not None:
            data = await reader.readexactly(length)
        else:
            data = await reader.read()
            keep = False
        return status, data, keep

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
