"""What a benchmark run measures: the quick and full plans, and the parts a run can pick."""

from __future__ import annotations

from dataclasses import dataclass, replace

# invite: scenario 1; storm: the connect storm; storm-nosub: the same without subscribing (an
# extra row); reconnect: every idle socket cut and reconnected at once; cross: scenario 5;
# relay: the bare relay baseline; cycles: scenario 2; timers: scenario 4; push: ring-push
# latency to offline users' Web Push devices (issue 12, bench/pushbench.py).
PARTS = (
    "invite",
    "storm",
    "storm-nosub",
    "reconnect",
    "cross",
    "relay",
    "cycles",
    "timers",
    "push",
)


@dataclass
class Plan:
    """The quick plan by default: small N and short phases (about 3 minutes on a server that
    keeps up); ``FULL`` below has the N of issues 5 and 9."""

    mode: str = "quick"
    levels: tuple[int, ...] = (300,)  # idle sockets on one server: memory measured at each
    s1_levels: tuple[int, ...] = (300,)  # the levels at which scenario 1 runs its rates
    rates: tuple[int, ...] = (100, 200)  # the rates of issue 9's targets
    rate_secs: float = 1.0
    callers: int = 800  # scenario 1 and 5 phases take the next ones in turn
    cross_users: int = 300  # scenario 5: callees connected to the other server
    baseline_users: int = 300  # idle sockets of the bare relay
    cycle_pairs: int = 16
    cycle_secs: float = 5.0
    timer_counts: tuple[int, ...] = (2000,)
    timer_spread: float = 5.0  # the pending deadlines spread over this many seconds
    timer_max_wait: float = 20.0
    timer_sockets: int = 100  # subscribed sockets of the timer calls' users, connected meanwhile
    storm_sockets: int = 300  # the connect storm: sockets opened at once on a fresh server
    storm_rate: int = 100  # invitations per second, starting with the storm
    storm_secs: float = 2.0
    storm_open_timeout: float = 45.0  # a storm socket without session.ready by then has failed
    push_users: int = 200  # offline users with one Web Push device each; one invite each per rate
    push_rates: tuple[int, ...] = (50, 200)  # issue 12's rates
    watch: int = 50  # every socket subscribes to this many users' presence, as the app does
    lost_after: float = 10.0  # an invitation not rung within this many seconds is lost
    drain: float = 10.0  # how long a rate phase waits for slow REST answers
    # Scenario 1/5: cancel each call this long after its invite (users are reused, the server
    # takes twice the writes of the rate), or, if negative, after the sending window only.
    cancel_after: float = -1.0
    settle: float = 20.0  # how long to wait for the servers to go idle after connecting
    topologies: tuple[str, ...] = ("embedded", "production")
    # Which parts run (--parts): the idle sockets are always connected and measured.
    parts: frozenset[str] = frozenset(PARTS) - {"storm-nosub"}
    # Parts left out of the production topology (its reconnect storm alone takes ~25 s, which
    # --quick cannot afford; embedded still measures it).
    production_skip: frozenset[str] = frozenset({"reconnect"})


def _full() -> Plan:
    """The N of issues 5 and 9, by theme (long on 2 cores)."""
    plan = replace(Plan(), mode="full", parts=frozenset(PARTS), production_skip=frozenset())
    # Sockets and users.
    plan = replace(plan, levels=(1000, 5000, 10000), s1_levels=(1000, 10000), callers=2000)
    plan = replace(plan, cross_users=1000, baseline_users=1000, cycle_pairs=48)
    # Phases: 10 s at 500/s needs more users than are connected, so each call is cancelled
    # 0.3 s after its invite and the users reused.
    plan = replace(plan, rates=(100, 200, 500), rate_secs=10.0, cancel_after=0.3, drain=60.0)
    plan = replace(plan, cycle_secs=30.0, settle=300.0)
    # Issue 9's storm and timers.
    plan = replace(plan, storm_sockets=1000, storm_secs=10.0, storm_open_timeout=120.0)
    plan = replace(plan, timer_counts=(10000, 100000), timer_spread=60.0, timer_max_wait=420.0)
    plan = replace(plan, timer_sockets=2000)
    # Issue 12's ring push: 1,000 offline users (20 s at 50/s, 5 s at 200/s).
    return replace(plan, push_users=1000)


PLANS = {"quick": Plan(), "full": _full()}
