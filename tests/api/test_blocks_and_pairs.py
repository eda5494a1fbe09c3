"""Abuse: one caller may invite one callee 6 times a minute (429 after), and a user may block
another, whose invitations then answer as if the callee were busy (API.md "REST")."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.callflow import act, error_of, ok, start_call, who

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair_limit(throttle_rates: Callable[..., None]) -> None:
    throttle_rates(PairThrottle="6/min")  # the default (tests/settings.py lifts it elsewhere)


def test_a_seventh_invitation_to_the_same_callee_within_a_minute_is_429(
    client_for: Any, pair_limit: None
) -> None:
    alice = client_for("alice")
    for _ in range(6):
        call = start_call(alice, "bob")
        ok(alice, call["id"], "cancel")
    res = alice.post("/api/calls/", {"invitees": ["bob"]}, format="json")
    error = error_of(res, 429, "throttled")
    assert int(res["Retry-After"]) >= 1 and error["details"]["retry_after"] >= 1
    # Other callees, and other callers of bob, are not affected.
    assert alice.post("/api/calls/", {"invitees": ["carol"]}, format="json").status_code == 201
    assert (
        client_for("dave").post("/api/calls/", {"invitees": ["bob"]}, format="json").status_code
        == 201
    )


def test_re_inviting_into_a_call_counts_for_the_pair_too(client_for: Any, pair_limit: None) -> None:
    alice, carol = client_for("alice"), client_for("carol")
    call = start_call(alice, "bob")
    for _ in range(5):
        ok(alice, call["id"], "invite", invitees=["carol"])
        ok(carol, call["id"], "reject")
    ok(alice, call["id"], "invite", invitees=["carol"])
    ok(carol, call["id"], "reject")
    error_of(act(alice, call["id"], "invite", invitees=["carol"]), 429, "throttled")


def blocks_of(client: APIClient) -> list[str]:
    res = client.get("/api/blocks/")
    assert res.status_code == 200
    return [b["user"] for b in res.json()["results"]]


def test_block_list_add_list_remove(client_for: Any) -> None:
    bob = client_for("bob")
    assert blocks_of(bob) == []
    assert bob.post("/api/blocks/mallory/").status_code == 201
    assert bob.post("/api/blocks/mallory/").status_code == 200  # already blocked
    assert bob.post("/api/blocks/alice/").status_code == 201
    assert blocks_of(bob) == ["alice", "mallory"]
    assert bob.delete("/api/blocks/alice/").status_code == 204
    assert blocks_of(bob) == ["mallory"]
    error_of(bob.post("/api/blocks/nobody/"), 404, "not_found")
    error_of(bob.post("/api/blocks/bob/"), 400, "validation_error")
    error_of(APIClient().get("/api/blocks/"), 401, "not_authenticated")


def test_a_blocked_callers_invitation_answers_as_if_the_callee_were_busy(
    client_for: Any,
) -> None:
    assert client_for("bob").post("/api/blocks/mallory/").status_code == 201
    mallory = client_for("mallory")
    call = start_call(mallory, "bob", "carol")
    assert (who(call, "bob")["state"], who(call, "bob")["reason"]) == ("rejected", "busy")
    assert who(call, "carol")["state"] == "inviting"
    # Exactly what a really busy callee looks like.
    busy_call = start_call(client_for("dave"), "erin")
    ok(client_for("erin"), busy_call["id"], "reject")  # erin free again
    start_call(client_for("frank"), "grace")  # grace now rings: busy
    real = start_call(client_for("heidi"), "grace")
    assert who(real, "grace") | {"updated_at": None} == who(call, "bob") | {
        "updated_at": None,
        "user": "grace",
        "invited_by": "heidi",
    }
    # bob never rings, and a later invite into the call is refused the same way.
    assert client_for("bob").get("/api/calls/").json()["results"][0]["id"] == call["id"]
    ok(mallory, call["id"], "cancel", invitees=["carol"])
    alone = start_call(mallory, "bob")
    assert who(alone, "bob")["reason"] == "busy"


@pytest.fixture(params=["locmem", "redis"])
def both_limits(
    request: pytest.FixtureRequest, settings: Any, throttle_rates: Callable[..., None]
) -> None:
    """Per caller 3 a minute, per pair 2: on the embedded cache and on production's Redis.
    (``settings`` first: the counters are cleared at the end while Redis is still the cache.)"""
    if request.param == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0"),
                "KEY_PREFIX": f"throttles-{uuid.uuid4().hex[:8]}",
            }
        }
    throttle_rates(InvitationThrottle="3/min", PairThrottle="2/min")


def test_both_invitation_limits_count_together_as_each_alone_would(
    client_for: Any, both_limits: None
) -> None:
    """Each limit counts as if alone, and one that let a request through counts it even when the
    other refuses it (DRF runs every throttle)."""
    alice = client_for("alice")
    for _ in range(2):
        ok(alice, start_call(alice, "bob")["id"], "cancel")
    # The third to bob: the pair limit refuses it; the caller's own limit let it through, so it
    # counts there (as DRF's throttles do), and the caller has used up all 3.
    error_of(alice.post("/api/calls/", {"invitees": ["bob"]}, format="json"), 429, "throttled")
    error_of(alice.post("/api/calls/", {"invitees": ["carol"]}, format="json"), 429, "throttled")
    # Another caller is counted apart, on both limits.
    dave = client_for("dave")
    ok(dave, start_call(dave, "bob")["id"], "cancel")
    assert dave.post("/api/calls/", {"invitees": ["carol"]}, format="json").status_code == 201

