"""Reading: call history and its filters, people search, me, tokens, and the page shape.

Given calls in every state, when a user lists them, then they see their own calls only, newest
first, in DRF pages; ``?missed=true`` is what a phone shows as missed calls.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from invitations import services
from invitations.models import Participant
from tests.callflow import error_of, ok, start_call, url
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PAGE_KEYS = {"count", "next", "previous", "results"}


def ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["results"]]


def listing(client: APIClient, query: str = "") -> dict[str, Any]:
    res = client.get(f"/api/calls/{query}")
    assert res.status_code == 200, res.content
    body = res.json()
    assert set(body) == PAGE_KEYS
    return body


def time_out(call_id: str, username: str) -> None:
    p = Participant.objects.get(call_id=call_id, user__username=username)
    Participant.objects.filter(pk=p.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert services.expire(participant_id=p.pk)


@pytest.fixture
def history(client_for: Any) -> dict[str, str]:
    """bob's history, oldest first: one call of each kind, every one of them ended but one."""
    made: dict[str, str] = {}

    def call(name: str, caller: str, *invitees: str) -> str:
        made[name] = start_call(client_for(caller), *invitees)["id"]
        return made[name]

    cid = call("answered", "alice", "bob")
    ok(client_for("bob"), cid, "accept")
    ok(client_for("bob"), cid, "end")
    cid = call("declined", "alice", "bob")
    ok(client_for("bob"), cid, "reject")
    cid = call("timed_out", "carol", "bob")
    time_out(cid, "bob")
    cid = call("cancelled", "dave", "bob")
    ok(client_for("dave"), cid, "cancel")
    cid = call("ended_while_ringing", "alice", "bob", "carol")
    ok(client_for("carol"), cid, "accept")
    ok(client_for("carol"), cid, "end")  # bob still rang: cancelled by the end
    cid = call("outgoing_unanswered", "bob", "alice")
    ok(client_for("alice"), cid, "reject")
    erin_talks = call("erins_own", "erin", "frank")
    ok(client_for("frank"), erin_talks, "accept")
    cid = call("busy", "grace", "frank")  # frank is busy: rejected as busy
    ok(client_for("erin"), erin_talks, "end")
    cid = call("ringing_now", "heidi", "bob")
    return made


def test_a_user_sees_only_their_calls_newest_first(
    client_for: Any, history: dict[str, str]
) -> None:
    page = listing(client_for("bob"))
    expected = [
        "ringing_now",
        "outgoing_unanswered",
        "ended_while_ringing",
        "cancelled",
        "timed_out",
        "declined",
        "answered",
    ]
    assert ids(page) == [history[n] for n in expected]
    assert page["count"] == 7 and page["next"] is None and page["previous"] is None
    # every entry is the full Call
    assert page["results"][0] == client_for("bob").get(url(history["ringing_now"])).json()


def test_a_user_with_no_calls_gets_an_empty_page(client_for: Any, history: dict[str, str]) -> None:
    assert listing(client_for("judy")) == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


@pytest.mark.parametrize(
    "state, expected",
    [
        ("ringing", ["ringing_now"]),
        ("ongoing", []),
        (
            "ended",
            [
                "outgoing_unanswered",
                "ended_while_ringing",
                "cancelled",
                "timed_out",
                "declined",
                "answered",
            ],
        ),
    ],
)
def test_filter_by_call_state(
    client_for: Any, history: dict[str, str], state: str, expected: list[str]
) -> None:
    assert ids(listing(client_for("bob"), f"?state={state}")) == [history[n] for n in expected]


def test_an_ongoing_call_is_listed_as_ongoing(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    ok(client_for("bob"), call["id"], "accept")
    assert ids(listing(client_for("alice"), "?state=ongoing")) == [call["id"]]


def test_missed_calls_are_invitations_that_timed_out_were_cancelled_or_met_me_busy(
    client_for: Any, history: dict[str, str]
) -> None:
    missed = ["ended_while_ringing", "cancelled", "timed_out"]
    assert ids(listing(client_for("bob"), "?missed=true")) == [history[n] for n in missed]
    # frank was busy talking to erin when grace called: that is a missed call too
    assert ids(listing(client_for("frank"), "?missed=true")) == [history["busy"]]
    # declined, answered, outgoing and still-ringing calls are not missed
    not_missed = ["ringing_now", "outgoing_unanswered", "declined", "answered"]
    assert ids(listing(client_for("bob"), "?missed=false")) == [history[n] for n in not_missed]
    # the inviter of a call nobody answered did not miss it
    assert ids(listing(client_for("carol"), "?missed=true")) == []


@pytest.mark.parametrize("spelling", ["true", "True", "1", "TRUE"])
def test_missed_accepts_the_usual_spellings_of_true(
    client_for: Any, history: dict[str, str], spelling: str
) -> None:
    assert len(listing(client_for("bob"), f"?missed={spelling}")["results"]) == 3


def test_filters_combine(client_for: Any, history: dict[str, str]) -> None:
    assert ids(listing(client_for("bob"), "?missed=true&state=ringing")) == []
    assert len(ids(listing(client_for("bob"), "?missed=false&state=ended"))) == 3


@pytest.mark.parametrize(
    "query, field",
    [
        ("?state=RINGING", "state"),
        ("?state=missed", "state"),
        ("?state=", "state"),
        ("?missed=yes", "missed"),
        ("?missed=", "missed"),
        ("?missed=2", "missed"),
    ],
)
def test_bad_filter_values_are_400(
    client_for: Any, history: dict[str, str], query: str, field: str
) -> None:
    error = error_of(client_for("bob").get(f"/api/calls/{query}"), 400, "validation_error")
    assert field in error["details"]


def test_history_is_paginated_fifty_at_a_time(client_for: Any) -> None:
    made = []
    for _ in range(53):
        call = start_call(client_for("alice"), "bob")
        ok(client_for("alice"), call["id"], "cancel")
        made.append(call["id"])
    first = listing(client_for("alice"))
    assert first["count"] == 53 and len(first["results"]) == 50
    assert first["previous"] is None and first["next"].endswith("/api/calls/?page=2")
    second = listing(client_for("alice"), "?page=2")
    assert len(second["results"]) == 3 and second["next"] is None
    assert second["previous"] is not None
    assert ids(first) + ids(second) == made[::-1]
    error_of(client_for("alice").get("/api/calls/?page=3"), 404, "not_found")


# --- people and me --------------------------------------------------------------------------------


def test_me_is_the_user_shape(client_for: Any) -> None:
    res = client_for("alice").get("/api/me/")
    assert res.status_code == 200
    assert res.json() == {"username": "alice", "display_name": "Alice", "online": False}


def test_users_lists_everyone_but_me_as_a_page(client_for: Any, users: dict[str, Any]) -> None:
    page = client_for("alice").get("/api/users/").json()
    assert set(page) == PAGE_KEYS
    names = [u["username"] for u in page["results"]]
    assert names == sorted(set(users) - {"alice"})
    assert page["results"][0] == {"username": "bob", "display_name": "Bob", "online": False}


def test_users_hides_inactive_accounts(client_for: Any, users: dict[str, Any]) -> None:
    users["bob"].is_active = False
    users["bob"].save()
    names = [u["username"] for u in client_for("alice").get("/api/users/").json()["results"]]
    assert "bob" not in names


@pytest.mark.parametrize(
    "term, expected",
    [("ar", ["carol"]), ("AR", ["carol"]), ("  bo ", ["bob"]), ("zz", []), ("", None)],
)
def test_users_search_matches_username_or_name_case_insensitively(
    client_for: Any, users: dict[str, Any], term: str, expected: list[str] | None
) -> None:
    res = client_for("alice").get("/api/users/", {"search": term})
    names = [u["username"] for u in res.json()["results"]]
    if expected is None:
        assert len(names) == len(users) - 1  # no term: everyone
    else:
        assert names == expected


def test_users_search_never_finds_myself(client_for: Any) -> None:
    assert client_for("alice").get("/api/users/?search=alice").json()["results"] == []


def test_users_search_by_display_name(client_for: Any, users: dict[str, Any]) -> None:
    users["dave"].last_name = "Grohl"
    users["dave"].save()
    res = client_for("alice").get("/api/users/?search=grohl").json()
    assert [u["display_name"] for u in res["results"]] == ["Dave Grohl"]


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_is_created_used_and_revoked(users: dict[str, Any]) -> None:
    c = APIClient()
    res = c.post("/api/auth/token/", {"username": "bob", "password": PASSWORD}, format="json")
    assert res.status_code == 200 and set(res.json()) == {"token", "expires_at"}
    token = res.json()["token"]
    # Only a hash is stored: a new login is a new token (tokens/ in tests/api covers devices).
    again = c.post("/api/auth/token/", {"username": "bob", "password": PASSWORD}, format="json")
    assert again.json()["token"] != token

    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert c.get("/api/me/").json()["username"] == "bob"
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bearer.get("/api/me/").json()["username"] == "bob"

    revoked = c.delete("/api/auth/token/")
    assert revoked.status_code == 204
    error_of(c.get("/api/me/"), 401, "not_authenticated")
    # the other token of bob's is untouched
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {again.json()['token']}")
    assert other.get("/api/me/").status_code == 200


def test_revoking_without_credentials_is_401(users: dict[str, Any]) -> None:
    error_of(APIClient().delete("/api/auth/token/"), 401, "not_authenticated")


def test_an_inactive_user_gets_no_token(users: dict[str, Any]) -> None:
    users["bob"].is_active = False
    users["bob"].save()
    res = APIClient().post(
        "/api/auth/token/", {"username": "bob", "password": PASSWORD}, format="json"
    )
    error_of(res, 401, "not_authenticated")


def test_the_ice_servers_endpoint_answers_a_list(client_for: Any) -> None:
    res = client_for("alice").get("/api/rtc/ice-servers/")
    assert res.status_code == 200
    assert isinstance(res.json()["ice_servers"], list)
