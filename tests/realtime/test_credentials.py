"""Sockets and credentials: single-use tickets open /ws/, and a socket whose token is revoked, or
whose user changes password or is deactivated, is closed with 4401 within seconds (API.md: 20 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from invitations import tokens
from tests.realtime.support import Device, Devices, open_socket, token_for

pytestmark = pytest.mark.django_db(transaction=True)

RECHECK = 0.3


@pytest.fixture
def quick_recheck(settings: Any) -> Iterator[None]:
    settings.CALLSITE = {**settings.CALLSITE, "AUTH_RECHECK_SECONDS": RECHECK}
    yield


def test_the_default_recheck_keeps_the_20_second_promise() -> None:
    assert django_settings.CALLSITE["AUTH_RECHECK_SECONDS"] <= 10


async def socket(query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> Device:
    return Device(await open_socket(query=query, headers=headers), None)


async def assert_closed_4401(device: Device, within: float = RECHECK + 3) -> None:
    event = await device.next(timeout=within)
    assert event["type"] == "error" and event["error"]["code"] == "not_authenticated", event
    assert await device.next(timeout=within) == {"type": "<closed>", "code": 4401}
    await device.close()


def ticket_for(token: str) -> str:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    res = c.post("/api/ws/ticket/")
    assert res.status_code == 200, res.content
    return res.json()["ticket"]


async def test_a_ticket_opens_one_socket_once(users: dict[str, Any]) -> None:
    key = await database_sync_to_async(token_for)(users["bob"])
    ticket = await database_sync_to_async(ticket_for)(key)
    first = await socket(f"?ticket={ticket}&device_id=tab-1")
    ready = await first.next("session.ready")
    assert (ready["user"], ready["device_id"]) == ("bob", "tab-1")
    second = await socket(f"?ticket={ticket}")
    assert (await second.next())["error"]["code"] == "not_authenticated"
    assert await second.next() == {"type": "<closed>", "code": 4401}
    await first.close()
    await second.close()


async def test_an_expired_ticket_is_refused(users: dict[str, Any], settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "WS_TICKET_SECONDS": 1}
    ticket, _ = await database_sync_to_async(tokens.issue_ticket)(
        user=users["bob"], token_digest=None
    )
    await asyncio.sleep(1.5)
    late = await socket(f"?ticket={ticket}")
    assert (await late.next())["error"]["code"] == "not_authenticated"
    await late.close()


async def test_revoking_a_token_closes_its_sockets_with_4401_and_only_those(
    users: dict[str, Any], devices: Devices, quick_recheck: None
) -> None:
    phone_key = await database_sync_to_async(token_for)(users["bob"], "phone")
    laptop_key = await database_sync_to_async(token_for)(users["bob"], "laptop")
    phone = await socket(headers=[(b"authorization", f"Token {phone_key}".encode())])
    await phone.next("session.ready")
    # A ticket the phone's token asked for stands for that token.
    ticket = await database_sync_to_async(ticket_for)(phone_key)
    phone_tab = await socket(f"?ticket={ticket}")
    await phone_tab.next("session.ready")
    laptop = await socket(f"?token={laptop_key}")
    await laptop.next("session.ready")

    def revoke() -> int:
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Token {phone_key}")
        return c.delete("/api/auth/token/").status_code

    assert await database_sync_to_async(revoke)() == 204
    await assert_closed_4401(phone)
    await assert_closed_4401(phone_tab)
    await laptop.ping()
    await laptop.close()


async def test_a_password_change_closes_every_socket_of_the_user(
    users: dict[str, Any], devices: Devices, quick_recheck: None
) -> None:
    bob = users["bob"]

    def session_cookie() -> str:
        c = Client()
        c.force_login(bob)
        return c.cookies[django_settings.SESSION_COOKIE_NAME].value

    cookie = await database_sync_to_async(session_cookie)()
    browser = await socket(
        headers=[
            (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"127.0.0.1:8000"),
        ]
    )
    await browser.next("session.ready")
    phone = await devices(bob, "phone")
    alice = await devices(users["alice"])

    def change_password() -> None:
        bob.set_password("another-password-456")
        bob.save()

    await database_sync_to_async(change_password)()
    await assert_closed_4401(browser)
    await assert_closed_4401(phone)
    await alice.ping()


async def test_deactivating_a_user_closes_their_sockets(
    users: dict[str, Any], devices: Devices, quick_recheck: None
) -> None:
    bob = users["bob"]
    phone = await devices(bob, "phone")

    def deactivate() -> None:
        bob.is_active = False
        bob.save(update_fields=["is_active"])

    await database_sync_to_async(deactivate)()
    await assert_closed_4401(phone)


async def test_logging_out_closes_that_sessions_sockets_and_only_those(
    users: dict[str, Any], devices: Devices, quick_recheck: None
) -> None:
    """Django's logout view ends one browser session: the sockets it opened (by cookie, or by a
    ticket it asked for) are closed with 4401; bob's other session and his token stay open."""
    bob = users["bob"]

    def signed_in() -> tuple[Client, str, str]:
        c = Client()
        c.force_login(bob)
        res = c.post("/api/ws/ticket/")
        assert res.status_code == 200, res.content
        return c, c.cookies[django_settings.SESSION_COOKIE_NAME].value, res.json()["ticket"]

    def cookie_socket_headers(cookie: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"127.0.0.1:8000"),
        ]

    first, first_cookie, first_ticket = await database_sync_to_async(signed_in)()
    _second, second_cookie, _ = await database_sync_to_async(signed_in)()
    assert first_cookie != second_cookie
    tab = await socket("?device_id=tab", cookie_socket_headers(first_cookie))
    await tab.next("session.ready")
    ticketed = await socket(f"?ticket={first_ticket}&device_id=tab-ticket")
    await ticketed.next("session.ready")
    other_tab = await socket("?device_id=other", cookie_socket_headers(second_cookie))
    await other_tab.next("session.ready")
    phone = await devices(bob, "phone")

    def log_out() -> None:
        res = first.post("/accounts/logout/")
        assert res.status_code in (200, 302), res.status_code

    await database_sync_to_async(log_out)()
    await assert_closed_4401(tab)
    await assert_closed_4401(ticketed)
    await asyncio.sleep(RECHECK * 3)  # several more re-checks: the others stay
    await other_tab.ping()
    await phone.ping()
    await other_tab.close()
