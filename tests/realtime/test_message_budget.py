"""The per-socket message budget (a token bucket: 20/s, burst 100; 10 s of flooding closes)."""

from __future__ import annotations

from invitations.realtime.limits import MessageBudget, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock) -> MessageBudget:
    return MessageBudget(rate=20, burst=100, flood_seconds=10, clock=clock)


def test_a_burst_of_100_passes_and_the_101st_is_dropped_with_one_notice() -> None:
    clock = Clock()
    b = budget(clock)
    assert [b.take() for _ in range(100)] == [Verdict.OK] * 100
    assert b.take() == Verdict.DROP_AND_TELL
    assert b.take() == Verdict.DROP  # told once a second at most
    clock.now += 1.0
    assert b.take() == Verdict.OK  # 20 tokens came back


def test_20_messages_a_second_go_on_for_ever() -> None:
    clock = Clock()
    b = budget(clock)
    for _ in range(60 * 20):
        clock.now += 0.05
        assert b.take() == Verdict.OK


def test_flooding_for_10_seconds_closes_the_socket() -> None:
    clock = Clock()
    b = budget(clock)
    verdicts = []
    for _ in range(13 * 100):  # 100 messages a second for 13 s
        clock.now += 0.01
        verdicts.append(b.take())
    first_drop = verdicts.index(Verdict.DROP_AND_TELL)
    closed = verdicts.index(Verdict.CLOSE)
    assert 9.9 <= (closed - first_drop) * 0.01 <= 10.1


def test_a_pause_of_a_second_ends_the_flood() -> None:
    clock = Clock()
    b = budget(clock)
    for _ in range(8):  # 8 s over budget, then quiet
        for _ in range(100):
            clock.now += 0.01
            b.take()
    clock.now += 1.5
    for _ in range(8):
        for _ in range(100):
            clock.now += 0.01
            assert b.take() != Verdict.CLOSE
