"""Daphne's walk over every connection (timeouts, pings) goes in slices (callsite/server.py).

Unit level: the real Server class and Twisted's reactor, with connections that record when they
are checked. Each slice checks at most ``CHECK_SLICE`` connections, the loop runs other work
between slices, every connection is still checked once per walk, and the next walk comes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callsite import server as served  # imports daphne.server first: Twisted's asyncio reactor


class Connection:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def check_timeouts(self) -> None:
        self.log.append(self.name)


def test_a_walk_checks_every_connection_once_in_slices_with_the_loop_free_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(served, "CHECK_SLICE", 3)
    later: list[tuple[float, Any, tuple[Any, ...]]] = []
    monkeypatch.setattr(
        served.reactor, "callLater", lambda delay, fn, *args: later.append((delay, fn, args))
    )
    log: list[str] = []
    server = served.Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {Connection(log, f"c{i}"): {} for i in range(7)}

    server.timeout_checker()
    assert log == ["c0", "c1", "c2"]  # one slice, then the loop is free
    delay, fn, args = later.pop()
    assert delay == 0
    gone = next(c for c in server.connections if c.name == "c4")
    del server.connections[gone]  # closed between slices: not checked
    fn(*args)
    assert log == ["c0", "c1", "c2", "c3", "c5"]
    delay, fn, args = later.pop()
    fn(*args)
    assert log == ["c0", "c1", "c2", "c3", "c5", "c6"]
    delay, fn, args = later.pop()
    assert (delay, fn) == (served.CHECK_EVERY, server.timeout_checker)  # and the next walk
    assert not later


def test_other_work_runs_between_slices_on_the_real_loop() -> None:
    log: list[str] = []
    server = served.Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    n = served.CHECK_SLICE * 3
    server.connections = {Connection(log, "conn"): {} for _ in range(n)}

    async def walk() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(server.timeout_checker)
        for _ in range(10):
            loop.call_soon(log.append, "other")
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)

    reactor = served.reactor  # Twisted's asyncio reactor, typed Any
    reactor._asyncioEventloop.run_until_complete(walk())
    for call in reactor.getDelayedCalls():  # the next walk, 2 s later: not run here
        call.cancel()
    assert log.count("conn") == n
    first_other = log.index("other")
    assert 0 < first_other <= served.CHECK_SLICE  # the loop ran other work inside the walk
