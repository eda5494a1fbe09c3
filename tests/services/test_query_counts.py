"""How many queries each service costs: bounds that keep the write path lean (issue 9).

Counted with pytest-django's ``django_assert_max_num_queries`` around the service call alone,
on users and calls made beforehand, so a regression that adds a query per participant or per
event fails here rather than in a benchmark.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from invitations import selectors, services, tokens
from invitations.realtime import devices, protocol

pytestmark = pytest.mark.django_db(transaction=True)  # the services' on_commit hooks run

# Today's counts, as ceilings: a change may only lower them. SQLite needs no lock statements
# (its BEGIN IMMEDIATE holds the one write lock), so it counts one less on invite. PostgreSQL
# pays for its call lock with a statement of its own, and wins it back by writing the call's
# change and its events in one (services/statements.py); SQLite sends those two apart.
# BEGIN and COMMIT are counted: Django logs them as queries.
COUNTS = {
    "sqlite": {"invite": 7, "accept": 6, "reject": 6, "cancel": 6, "end": 5, "ack": 5},
    "postgresql": {"invite": 8, "accept": 6, "reject": 6, "cancel": 6, "end": 5, "ack": 6},
}
# Issue 9's targets. ``test_targets`` holds those not met as strict expected failures, so
# meeting one turns that test red until its name leaves NOT_MET.
TARGETS = {"invite": 8, "accept": 6, "reject": 6, "cancel": 6, "end": 6, "ack": 3}
# ack met 3 with one unlocked read, a conditional update and an insert, but its event could
# then carry a snapshot that missed another invitee's ack made in the same milliseconds, with a
# version as new (test_races.py; a browser group call showed "calling" for a ringing callee).
# It now locks the call like every answer: BEGIN and COMMIT, and on PostgreSQL the lock too.
NOT_MET: dict[str, set[str]] = {"sqlite": {"ack"}, "postgresql": {"ack"}}


def ceiling(name: str) -> int:
    return COUNTS.get(connection.vendor, COUNTS["postgresql"])[name]


def ring(users: dict[str, Any], inviter: str = "alice", invitee: str = "bob") -> str:
    return str(services.invite(inviter=users[inviter], invitees=[invitee]).call["id"])


def test_invite_of_one_callee(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(ceiling("invite")):
        services.invite(inviter=users["alice"], invitees=["bob"])


def test_accept(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ceiling("accept")):
        services.accept(actor=users["bob"], call_id=call_id)


def test_reject(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ceiling("reject")):
        services.reject(actor=users["bob"], call_id=call_id)


def test_cancel(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ceiling("cancel")):
        services.cancel(actor=users["alice"], call_id=call_id)


def test_end(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    services.accept(actor=users["bob"], call_id=call_id)
    with django_assert_max_num_queries(ceiling("end")):
        services.end(actor=users["alice"], call_id=call_id)


def test_ack(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ceiling("ack")):
        services.acknowledge(actor=users["bob"], call_id=call_id)


def _run(name: str, users: dict[str, Any], counted: Any) -> None:
    """Set the call up for ``name``, then run that service inside ``counted``."""
    if name == "invite":
        with counted:
            services.invite(inviter=users["alice"], invitees=["bob"])
        return
    call_id = ring(users)
    if name == "end":
        services.accept(actor=users["bob"], call_id=call_id)
    actor = users["alice"] if name in {"cancel", "end"} else users["bob"]
    service = {
        "accept": services.accept,
        "reject": services.reject,
        "cancel": services.cancel,
        "end": services.end,
    }.get(name)
    with counted:
        if service is None:
            services.acknowledge(actor=actor, call_id=call_id)
        else:
            service(actor=actor, call_id=call_id)


_NOT_MET_HERE = NOT_MET.get(connection.vendor, set())  # the settings' database, known already
_NOT_MET_MARK = pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason=f"issue 9 query target not met on {connection.vendor} (see NOT_MET)",
)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=_NOT_MET_MARK if n in _NOT_MET_HERE else ()) for n in sorted(TARGETS)],
)
def test_targets(name: str, users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    _run(name, users, django_assert_max_num_queries(TARGETS[name]))


# A socket's connect (realtime/): the token check, the device's registration (one write
# transaction, under SQLite's one write lock), session.ready's read (one plain statement, calls
# and their participants together, whether or not anything rings), and the presence snapshot of
# its subscription. A reconnect storm pays these once per socket, all at once.
CONNECT_COUNTS = {
    "sqlite": {"token": 1, "register": 8, "ready_idle": 1, "ready": 1, "snapshot": 1},
    "postgresql": {"token": 1, "register": 9, "ready_idle": 1, "ready": 1, "snapshot": 1},
}


def test_a_sockets_connect(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    ceilings = CONNECT_COUNTS.get(connection.vendor, CONNECT_COUNTS["postgresql"])
    with django_assert_max_num_queries(ceilings["ready_idle"]):  # most reconnects
        idle = protocol.session_ready(users["bob"], "phone")
    assert idle["incoming"] == [] and idle["current"] is None
    ring(users)  # now bob has a ringing call to list
    key, _ = tokens.issue(user=users["bob"])
    with django_assert_max_num_queries(ceilings["token"]):
        assert tokens.check(key) is not None
    with django_assert_max_num_queries(ceilings["register"]):
        assert devices.device_connected(
            user=users["bob"], device_id="phone", channel_name="bob-phone", limit=10
        )
    with django_assert_max_num_queries(ceilings["ready"]):
        ready = protocol.session_ready(users["bob"], "phone")
    assert len(ready["incoming"]) == 1 and ready["current"] is None
    with django_assert_max_num_queries(ceilings["snapshot"]):
        snapshot = selectors.presence_snapshot(["alice", "bob", "nobody"])
    assert snapshot["users"] == [
        {"user": "alice", "online": False},
        {"user": "bob", "online": True},
    ]
