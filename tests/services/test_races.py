"""Races: requests, timers and processes racing for one transition produce exactly one winner.

Real threads, each with its own database connection, released together by a barrier, many times
over. On PostgreSQL the per-user lock rows and the locked call row serialise the deciders; on
SQLite, IMMEDIATE transactions do (the test database is a file: see tests/settings.py).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from invitations import services
from invitations.models import ACTIVE_STATES, LIVE_CALL_STATES, Call, CallEvent, Participant
from tests.callflow import together

pytestmark = pytest.mark.django_db(transaction=True)

ITERATIONS = 30
ANSWERS = ("accepted", "rejected", "cancelled", "timeout")


def status(res: Any) -> int:
    assert not isinstance(res, BaseException), repr(res)
    return res.status_code


def code(res: Any) -> str | None:
    return res.json()["error"]["code"] if res.status_code >= 400 else None


def end_every_call() -> None:
    """Between iterations: free everyone, through the service like the admin would."""
    for pk in Call.objects.filter(state__in=LIVE_CALL_STATES).values_list("pk", flat=True):
        services.force_end(call_id=pk)


def rings_for(username: str) -> list[Participant]:
    return list(
        Participant.objects.filter(
            user__username=username, state__in=ACTIVE_STATES, call__state__in=LIVE_CALL_STATES
        )
    )


@pytest.fixture
def api(client_for: Any) -> Callable[[str], APIClient]:
    """A fresh client per call, so no two threads ever share one."""

    def make(name: str) -> APIClient:
        token = client_for(name)._credentials["HTTP_AUTHORIZATION"]
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=token)
        return c

    return make


def post_call(c: APIClient, *invitees: str) -> Callable[[], Any]:
    return lambda: c.post("/api/calls/", {"invitees": list(invitees)}, format="json")


def post_action(c: APIClient, call_id: str, action: str, **body: Any) -> Callable[[], Any]:
    return lambda: c.post(f"/api/calls/{call_id}/{action}/", body, format="json")


# --- busy: one user, several callers at the same instant ------------------------------------------


@pytest.mark.parametrize("callers", [("alice", "carol"), ("alice", "carol", "dave", "erin")])
def test_callers_inviting_the_same_free_user_at_once_ring_them_exactly_once(
    api: Callable[[str], APIClient], callers: tuple[str, ...]
) -> None:
    for _ in range(ITERATIONS):
        results = together(*(post_call(api(name), "bob") for name in callers))
        assert [status(r) for r in results] == [201] * len(callers)
        bob_states = Counter(
            (p["state"], p["reason"])
            for r in results
            for p in r.json()["call"]["participants"]
            if p["user"] == "bob"
        )
        assert bob_states == {("inviting", None): 1, ("rejected", "busy"): len(callers) - 1}
        assert len(rings_for("bob")) == 1
        end_every_call()


def test_two_users_calling_each_other_at_once_make_exactly_one_call_ring(
    api: Callable[[str], APIClient],
) -> None:
    for _ in range(ITERATIONS):
        results = together(post_call(api("alice"), "bob"), post_call(api("bob"), "alice"))
        outcomes = sorted((status(r), code(r)) for r in results)
        assert outcomes == [(201, None), (409, "busy")], outcomes
        winner = next(r for r in results if r.status_code == 201).json()["call"]
        assert [p["state"] for p in winner["participants"]] == ["accepted", "inviting"]
        assert len(rings_for("alice")) == 1 and len(rings_for("bob")) == 1
        end_every_call()


def test_two_participants_adding_the_same_user_at_once_invite_them_once(
    api: Callable[[str], APIClient],
) -> None:
    for _ in range(ITERATIONS // 2):
        call = api("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json").json()
        cid = call["call"]["id"]
        assert post_action(api("bob"), cid, "accept")().status_code == 200
        results = together(
            post_action(api("alice"), cid, "invite", invitees=["carol"]),
            post_action(api("bob"), cid, "invite", invitees=["carol"]),
        )
        assert [status(r) for r in results] == [200, 200]
        errors = sorted(e["reason"] for r in results for e in r.json()["errors"])
        assert errors == ["already_in_call"]
        assert CallEvent.objects.filter(call_id=cid, kind="invited").count() == 2  # bob, carol
        end_every_call()


# --- one invitee, every way of answering at once --------------------------------------------------


def answer_race(
    users: dict[str, Any], api: Callable[[str], APIClient], *, with_timer: bool
) -> Counter[str]:
    """bob's invitation is accepted, rejected, cancelled and (maybe) expired at the same instant.

    With ``with_timer`` the deadline falls in the middle of the race, and each racer starts
    after a little random jitter, so that each of the four can be the one that wins.
    Returns what won, for the caller to check that every outcome really happens.
    """
    wins: Counter[str] = Counter()
    for _ in range(ITERATIONS):
        call = api("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json").json()
        cid = call["call"]["id"]
        p = Participant.objects.get(call_id=cid, user__username="bob")
        if with_timer:
            Participant.objects.filter(pk=p.pk).update(
                deadline=timezone.now() + timedelta(milliseconds=40)
            )

        def jitter(job: Callable[[], Any]) -> Callable[[], Any]:
            def run() -> Any:
                if with_timer:
                    time.sleep(random.uniform(0, 0.08))
                return job()

            return run

        def expire_at_deadline(pk: int = p.pk) -> bool:
            return services.expire(participant_id=pk)

        jobs = [
            jitter(post_action(api("bob"), cid, "accept", device_id="phone")),
            jitter(post_action(api("bob"), cid, "reject")),
            jitter(post_action(api("alice"), cid, "cancel")),
        ]
        if with_timer:
            jobs.append(jitter(expire_at_deadline))
        accept_res, reject_res, cancel_res, *expired = together(*jobs)

        won = [
            kind
            for kind, res in (
                ("accepted", accept_res),
                ("rejected", reject_res),
                ("cancelled", cancel_res),
            )
            if status(res) == 200
        ]
        if expired:
            assert not isinstance(expired[0], BaseException), repr(expired[0])
            if expired[0] is True:
                won.append("timeout")
        for res in (accept_res, reject_res, cancel_res):
            if res.status_code != 200:
                assert (res.status_code, code(res)) == (409, "invalid_state"), res.content
        # exactly one transition of bob happened, and the database says the same
        events = list(
            CallEvent.objects.filter(
                call_id=cid, subject__username="bob", kind__in=ANSWERS
            ).values_list("kind", flat=True)
        )
        assert len(events) == 1, events
        final = Participant.objects.get(pk=p.pk).state
        assert final == events[0]
        # a racer that was turned away by a late deadline did not win, but the timer did
        assert won == events or (won == [] and events == ["timeout"]), (won, events)
        wins[events[0]] += 1
        assert CallEvent.objects.filter(call_id=cid, kind="ended").count() == (
            0 if final == "accepted" else 1
        )
        end_every_call()
    return wins


def test_accept_reject_and_cancel_at_once_make_exactly_one_transition(
    users: dict[str, Any], api: Callable[[str], APIClient]
) -> None:
    wins = answer_race(users, api, with_timer=False)
    assert sum(wins.values()) == ITERATIONS


def test_accept_reject_cancel_and_the_timer_at_once_make_exactly_one_transition(
    users: dict[str, Any], api: Callable[[str], APIClient]
) -> None:
    wins = answer_race(users, api, with_timer=True)
    assert sum(wins.values()) == ITERATIONS
    # the jitter spreads the wins: the race is real, not always won by the same racer
    assert len(wins) >= 2, wins


def test_expiring_the_same_invitee_from_many_threads_times_them_out_once(
    client_for: Any,
) -> None:
    for _ in range(ITERATIONS):
        call = client_for("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json")
        cid = call.json()["call"]["id"]
        p = Participant.objects.get(call_id=cid, user__username="bob")
        Participant.objects.filter(pk=p.pk).update(deadline=timezone.now())
        results = together(*(lambda pk=p.pk: services.expire(participant_id=pk) for _ in range(4)))
        assert sorted(results) == [False, False, False, True], results
        assert CallEvent.objects.filter(call_id=cid, kind="timeout").count() == 1
        assert CallEvent.objects.filter(call_id=cid, kind="ended").count() == 1


# --- ending: one call.ended, whoever races for it -------------------------------------------------


def test_both_participants_leaving_at_once_end_the_call_exactly_once(
    api: Callable[[str], APIClient],
) -> None:
    for i in range(ITERATIONS):
        call = api("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json").json()
        cid = call["call"]["id"]
        assert post_action(api("bob"), cid, "accept")().status_code == 200
        how = ("quit", "end")[i % 2]
        results = together(
            post_action(api("alice"), cid, how),
            post_action(api("bob"), cid, "quit"),
            lambda cid=cid: services.force_end(call_id=cid),
        )
        ended = CallEvent.objects.filter(call_id=cid, kind="ended")
        assert ended.count() == 1
        assert Call.objects.get(pk=cid).state == "ended"
        for res in results[:2]:
            assert status(res) in (200, 409)
            if res.status_code == 409:
                assert code(res) == "invalid_state"


def test_accepting_while_the_inviter_hangs_up_ends_the_call_one_way_or_the_other(
    api: Callable[[str], APIClient],
) -> None:
    for _ in range(ITERATIONS):
        call = api("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json").json()
        cid = call["call"]["id"]
        together(post_action(api("bob"), cid, "accept"), post_action(api("alice"), cid, "quit"))
        c = Call.objects.get(pk=cid)
        bob = Participant.objects.get(call_id=cid, user__username="bob")
        # either bob got in first and alice's leaving left him alone (all_left), or alice
        # withdrew first and bob never got in (cancelled); never both, never neither
        assert c.state == "ended"
        assert (c.end_reason, bob.state) in {("all_left", "accepted"), ("cancelled", "cancelled")}
        assert CallEvent.objects.filter(call_id=cid, kind="ended").count() == 1
        end_every_call()


# --- snapshots: every event carries the call after the change, in an order a client can follow ---


def _version(call: dict[str, Any]) -> str:
    """What the browser app orders snapshots by (static/js/call/model.js ``version``): the
    latest of the participants' ``updated_at`` and the call's ``ended_at``."""
    times = [p["updated_at"] for p in call["participants"]] + [call["ended_at"] or ""]
    return max(timezone.datetime.fromisoformat(t).isoformat() for t in times if t)


def test_invitees_acknowledging_at_once_never_send_a_newest_snapshot_that_misses_an_ack(
    users: dict[str, Any],
) -> None:
    """A group call rings on everyone's devices at the same instant, and each acks at once.
    Each ack's event carries the whole call; a client keeps the newest (by version) it has seen.
    Whatever order they arrive in, the newest must show every ack: an ack whose snapshot was
    read before another's write, yet carries a version as new, would leave the inviter's
    waiting page saying "calling" for someone whose phone rings."""
    invitees = ["bob", "carol", "dave", "erin"]
    for _ in range(ITERATIONS):
        cid = services.invite(inviter=users["alice"], invitees=invitees).call["id"]
        results = together(
            *(
                lambda name=name, cid=cid: services.acknowledge(actor=users[name], call_id=cid)
                for name in invitees
            )
        )
        for res in results:
            assert not isinstance(res, BaseException), repr(res)
        newest = max(_version(snap) for snap in results)
        for snap in results:
            if _version(snap) == newest:
                states = {p["user"]: p["state"] for p in snap["participants"]}
                assert all(states[n] == "received" for n in invitees), (snap, results)
        end_every_call()
