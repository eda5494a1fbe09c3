"""How many queries each service costs: bounds that keep the write path lean (issue 9).

Counted with pytest-django's ``django_assert_max_num_queries`` around the service call alone,
on users and calls made beforehand, so a regression that adds a query per participant or per
event fails here rather than in a benchmark.
"""

from __future__ import annotations

from typing import Any

import pytest

from invitations import services

pytestmark = pytest.mark.django_db(transaction=True)  # the services' on_commit hooks run

# Today's counts (SQLite and PostgreSQL alike), as ceilings: a change may only lower them.
# Issue 9's targets are lower still (invite <= 8, accept <= 6, reject/cancel/end <= 6,
# ack <= 3); ``test_targets`` holds those not met yet (all but MET) as strict expected
# failures, so meeting one turns that test red until its number here moves down and its name
# joins MET. Two queries came with the hardening (issue 10): invite reads who blocked the
# caller, and ack first answers from a read, so a stray ack never opens a write transaction.
INVITE, ACCEPT, REJECT, CANCEL, END, ACK = 10, 7, 7, 7, 6, 7
TARGETS = {"invite": 8, "accept": 6, "reject": 6, "cancel": 6, "end": 6, "ack": 3}
MET = {"end"}


def ring(users: dict[str, Any], inviter: str = "alice", invitee: str = "bob") -> str:
    return str(services.invite(inviter=users[inviter], invitees=[invitee]).call["id"])


def test_invite_of_one_callee(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(INVITE):
        services.invite(inviter=users["alice"], invitees=["bob"])


def test_accept(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ACCEPT):
        services.accept(actor=users["bob"], call_id=call_id)


def test_reject(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(REJECT):
        services.reject(actor=users["bob"], call_id=call_id)


def test_cancel(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(CANCEL):
        services.cancel(actor=users["alice"], call_id=call_id)


def test_end(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    services.accept(actor=users["bob"], call_id=call_id)
    with django_assert_max_num_queries(END):
        services.end(actor=users["alice"], call_id=call_id)


def test_ack(users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    call_id = ring(users)
    with django_assert_max_num_queries(ACK):
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


NOT_MET = pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason="issue 9 query target not met yet (see the counts above)",
)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in MET else NOT_MET) for n in sorted(TARGETS)]
)
def test_targets(name: str, users: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    _run(name, users, django_assert_max_num_queries(TARGETS[name]))
