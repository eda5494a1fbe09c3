"""What push costs the call path for users with no push device: at most one query per
transition with push configured, none with push off (tests/services/test_query_counts.py holds
the ceilings with push off)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invitations import services
from invitations.models import Call

from .conftest import Gateway

pytestmark = pytest.mark.django_db(transaction=True)


def count(run: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def ring(users: dict[str, Any], inviter: str, invitee: str) -> str:
    return str(services.invite(inviter=users[inviter], invitees=[invitee]).call["id"])


def costs(users: dict[str, Any], pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Queries of invite, accept, reject and cancel, each on a fresh pair of users."""
    (a1, b1), (a2, b2), (a3, b3), (a4, b4) = pairs
    result = {"invite": count(lambda: ring(users, a1, b1))}
    call = ring(users, a2, b2)
    result["accept"] = count(lambda: services.accept(actor=users[b2], call_id=call))
    call = ring(users, a3, b3)
    result["reject"] = count(lambda: services.reject(actor=users[b3], call_id=call))
    call = ring(users, a4, b4)
    result["cancel"] = count(lambda: services.cancel(actor=users[a4], call_id=call))
    return result


def test_push_adds_at_most_one_query_for_users_without_push_devices(
    users: dict[str, Any], settings: Any, gateway: Gateway
) -> None:
    pairs = [("alice", "bob"), ("carol", "dave"), ("erin", "frank"), ("grace", "heidi")]
    off = costs(users, pairs)
    for call in Call.objects.exclude(state="ended"):  # everyone free again
        services.force_end(call_id=call.pk)
    settings.PUSH_WEBHOOK_URL = gateway.url
    settings.PUSH_WEBHOOK_SECRET = gateway.secret
    on = costs(users, pairs)
    assert {name: on[name] - off[name] for name in off} == {
        "invite": 1,
        "accept": 1,
        "reject": 1,
        "cancel": 1,
    }
