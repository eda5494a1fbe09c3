"""session.ready's calls (selectors.session_snapshots, plain SQL) are the snapshots the ORM
path gives (snapshots.call_snapshot) for the same calls: a client cannot tell them apart."""

from __future__ import annotations

from typing import Any

import pytest

from invitations import selectors, services
from invitations.models import Call, CallType
from invitations.snapshots import call_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def orm_snapshot(call_id: str) -> dict[str, Any]:
    return call_snapshot(Call.objects.get(pk=call_id))


def test_a_ringing_call_is_listed_exactly_as_the_orm_snapshots_it(users: dict[str, Any]) -> None:
    call_id = services.invite(
        inviter=users["alice"],
        invitees=["bob", "carol", "dave"],
        type=CallType.AUDIO,
        extended_data='{"topic": "ünï"}',
    ).call["id"]
    services.acknowledge(actor=users["carol"], call_id=call_id)
    services.reject(actor=users["carol"], call_id=call_id, reason="declined")
    services.acknowledge(actor=users["dave"], call_id=call_id)
    incoming, current = selectors.session_snapshots(users["bob"])
    assert current is None and incoming == [orm_snapshot(call_id)]
    people = incoming[0]["participants"]
    assert [(p["user"], p["state"]) for p in people] == [
        ("alice", "accepted"),
        ("bob", "inviting"),
        ("carol", "rejected"),
        ("dave", "received"),
    ]
    assert people[2]["reason"] == "declined" and incoming[0]["type"] == "audio"


def test_the_call_i_talk_in_is_current_with_whoever_was_added_and_by_whom(
    users: dict[str, Any],
) -> None:
    call_id = services.invite(inviter=users["alice"], invitees=["bob"]).call["id"]
    services.accept(actor=users["bob"], call_id=call_id)
    services.add_invitees(actor=users["bob"], call_id=call_id, invitees=["carol"])
    incoming, current = selectors.session_snapshots(users["bob"])
    assert incoming == [] and current == orm_snapshot(call_id)
    assert current["participants"][2]["invited_by"] == "bob"
    assert current["participants"][2]["deadline"] is not None
    # carol rings in it: for her it is incoming, the same snapshot.
    assert selectors.session_snapshots(users["carol"]) == ([orm_snapshot(call_id)], None)


def test_ended_calls_and_calls_i_left_are_not_listed(users: dict[str, Any]) -> None:
    ended = services.invite(inviter=users["alice"], invitees=["bob"]).call["id"]
    services.cancel(actor=users["alice"], call_id=ended)
    left = services.invite(inviter=users["carol"], invitees=["bob", "dave"]).call["id"]
    services.reject(actor=users["bob"], call_id=left)
    assert selectors.session_snapshots(users["bob"]) == ([], None)
    assert selectors.session_snapshots(users["dave"]) == ([orm_snapshot(left)], None)
