"""The two routes the browser's service worker needs (static/js/sw.js, docs/push.md): the worker
itself at the site root, and a CSRF token for declining a call from its notification."""

from __future__ import annotations

from typing import Any

from django.test import Client

from invitations.models import Call


def test_the_service_worker_is_served_at_the_root_as_javascript(client: Client) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    # The worker's scope is the folder it is served from: the root, so no Service-Worker-Allowed.
    assert b'addEventListener("push"' in response.content
    # Under the same policy as every page: its fetches go to this origin only.
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_a_worker_can_decline_with_the_token_it_fetches(users: dict[str, Any]) -> None:
    alice, bob = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    alice.force_login(users["alice"])
    bob.force_login(users["bob"])
    token = alice.get("/csrf-token/").json()["csrf_token"]
    made = alice.post(
        "/api/calls/",
        {"invitees": ["bob"]},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert made.status_code == 201, made.content
    call_id = made.json()["call"]["id"]

    without = bob.post(f"/api/calls/{call_id}/reject/", {}, content_type="application/json")
    assert without.status_code == 403

    answer = bob.get("/csrf-token/")
    assert answer["Cache-Control"].startswith("max-age=0")
    declined = bob.post(
        f"/api/calls/{call_id}/reject/",
        {},
        content_type="application/json",
        headers={"X-CSRFToken": answer.json()["csrf_token"]},
    )
    assert declined.status_code == 200, declined.content
    assert Call.objects.get(pk=call_id).state == "ended"
