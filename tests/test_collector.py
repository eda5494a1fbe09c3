"""The server's collector (callsite/collector.py): collect what is new, freeze what survives.

Unit level, on this process's real collector (each test hands everything back afterwards).
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from callsite.collector import Collector, start


class Node:
    def __init__(self) -> None:
        self.other: Any = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture(autouse=True)
def _thaw() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_tick_collects_the_garbage_there_is_and_freezes_what_survives() -> None:
    garbage, garbage_ref = cycle()
    kept, _ = cycle()
    del garbage
    before = gc.get_freeze_count()
    Collector(unfreeze_every=3600).tick(now=0)
    assert garbage_ref() is None  # collected, not frozen
    assert gc.get_freeze_count() > before  # the survivors, `kept` among them
    assert kept.other.other is kept


def test_a_frozen_object_is_still_freed_when_its_last_reference_goes() -> None:
    kept = [Node()]
    ref = weakref.ref(kept[0])
    Collector(unfreeze_every=3600).tick(now=0)
    kept.clear()
    assert ref() is None  # reference counting frees it at once: freezing leaks nothing


def test_a_frozen_cycle_that_becomes_garbage_waits_for_the_unfreeze_then_goes() -> None:
    collector = Collector(unfreeze_every=60)
    collector.unfrozen_at = 0
    node, ref = cycle()
    collector.tick(now=2)  # frozen while alive
    del node
    collector.tick(now=4)
    assert ref() is not None  # a frozen cycle: the collector no longer looks at it
    collector.tick(now=61)  # the unfreeze: everything is walked once
    assert ref() is None


def test_start_schedules_ticks_at_the_period_and_zero_turns_it_off() -> None:
    calls: list[tuple[float, Any]] = []
    assert start(lambda delay, fn: calls.append((delay, fn)), 0, 3600) is False
    assert not calls
    assert start(lambda delay, fn: calls.append((delay, fn)), 2, 3600) is True
    delay, tick = calls.pop()
    assert delay == 2
    tick()  # a tick schedules the next one
    assert [d for d, _ in calls] == [2]
