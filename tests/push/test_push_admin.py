"""The admin shows each user's push devices (never their tokens) and, on a call's page, the
pushes it owed and every attempt on its timeline."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from invitations import services
from invitations.push import devices

from .conftest import Gateway, deliver

pytestmark = pytest.mark.django_db(transaction=True)


def test_push_devices_are_listed_per_user_without_their_tokens(
    admin_client: Client, users: dict[str, Any], push_on: Gateway
) -> None:
    devices.register(
        user=users["bob"],
        device_id="bobs-phone",
        provider="fcm",
        token="SECRET-TOK",
        subscription={},
    )
    devices.register(
        user=users["carol"], device_id="carols-phone", provider="fcm", token="T2", subscription={}
    )
    page = admin_client.get("/admin/invitations/pushdevice/?q=bob").content.decode()
    assert "bobs-phone" in page and "carols-phone" not in page
    assert "SECRET-TOK" not in page
    device_pk = devices.devices_of(users["bob"])[0].pk
    detail = admin_client.get(f"/admin/invitations/pushdevice/{device_pk}/change/").content.decode()
    assert "bobs-phone" in detail and "SECRET-TOK" not in detail


def test_a_calls_page_shows_its_pushes_and_each_attempt_on_the_timeline(
    admin_client: Client, users: dict[str, Any], push_on: Gateway
) -> None:
    devices.register(
        user=users["bob"], device_id="bobs-phone", provider="fcm", token="t", subscription={}
    )
    push_on.script(503)
    call_id = services.invite(inviter=users["alice"], invitees=["bob"]).call["id"]
    deliver()
    page = admin_client.get(f"/admin/invitations/call/{call_id}/change/").content.decode()
    assert "Pushes" in page and "bobs-phone" in page
    assert "latency_ms" in page and "&quot;outcome&quot;: &quot;retry&quot;" in page
