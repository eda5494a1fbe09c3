"""Who may open /ws/: token header, ?token=, or the session cookie from this site's pages."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client

from tests.realtime.support import Device, open_socket, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def opened(query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> Device:
    return Device(await open_socket(query=query, headers=headers), None)


async def assert_refused(device: Device) -> None:
    event = await device.next()
    assert event["type"] == "error" and event["error"]["code"] == "not_authenticated", event
    assert await device.next() == {"type": "<closed>", "code": 4401}


async def assert_ready_as(device: Device, username: str) -> dict[str, Any]:
    ready = await device.next("session.ready")
    assert ready["user"] == username
    await device.close()
    return ready


async def test_no_credentials_closes_with_4401(users: dict[str, Any]) -> None:
    await assert_refused(await opened())


async def test_token_header_authenticates(users: dict[str, Any]) -> None:
    key = await database_sync_to_async(token_for)(users["bob"])
    for scheme in ("Token", "Bearer"):
        device = await opened(headers=[(b"authorization", f"{scheme} {key}".encode())])
        ready = await assert_ready_as(device, "bob")
        assert ready["device_id"].startswith("srv-")


async def test_token_query_parameter_authenticates_and_device_id_is_kept(
    users: dict[str, Any],
) -> None:
    key = await database_sync_to_async(token_for)(users["bob"])
    ready = await assert_ready_as(await opened(f"?token={key}&device_id=tab-1"), "bob")
    assert ready["device_id"] == "tab-1"


@pytest.mark.parametrize(
    "how",
    ["bad-query", "bad-header", "empty-header", "odd-scheme"],
)
async def test_a_wrong_token_closes_with_4401_even_with_a_valid_cookie(
    users: dict[str, Any], how: str
) -> None:
    cookie = await database_sync_to_async(session_cookie)(users["bob"])
    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]
    query = ""
    if how == "bad-query":
        query = "?token=nope"
    elif how == "bad-header":
        headers.append((b"authorization", b"Token nope"))
    elif how == "empty-header":
        headers.append((b"authorization", b"Token "))
    else:
        headers.append((b"authorization", b"Basic Ym9iOnB3"))
    await assert_refused(await opened(query, headers))


async def test_token_of_an_inactive_user_closes_with_4401(users: dict[str, Any]) -> None:
    bob = users["bob"]
    key = await database_sync_to_async(token_for)(bob)
    bob.is_active = False
    await database_sync_to_async(bob.save)()
    await assert_refused(await opened(f"?token={key}"))


async def test_session_cookie_from_this_site_authenticates(users: dict[str, Any]) -> None:
    cookie = await database_sync_to_async(session_cookie)(users["carol"])
    headers = [
        (b"cookie", f"csrftoken=abc; {settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]
    await assert_ready_as(await opened(headers=headers), "carol")


@pytest.mark.parametrize(
    "origin",
    [None, b"null", b"http://evil.example", b"http://127.0.0.1:9999", b"file://x"],
)
async def test_session_cookie_from_another_origin_closes_with_4401(
    users: dict[str, Any], origin: bytes | None
) -> None:
    cookie = await database_sync_to_async(session_cookie)(users["carol"])
    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"host", b"127.0.0.1:8000"),
    ]
    if origin is not None:
        headers.append((b"origin", origin))
    await assert_refused(await opened(headers=headers))


async def test_session_cookie_on_a_host_not_in_allowed_hosts_closes_with_4401(
    users: dict[str, Any],
) -> None:
    cookie = await database_sync_to_async(session_cookie)(users["carol"])
    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", b"http://evil.example"),
        (b"host", b"evil.example"),
    ]
    await assert_refused(await opened(headers=headers))


async def test_csrf_trusted_origins_vouch_for_other_origins(
    users: dict[str, Any], settings: Any
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.example.org"]
    cookie = await database_sync_to_async(session_cookie)(users["carol"])
    for origin in (b"https://app.example.com", b"https://m.example.org"):
        headers = [
            (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            (b"origin", origin),
            (b"host", b"api.internal:8000"),
        ]
        await assert_ready_as(await opened(headers=headers), "carol")


async def test_a_logged_out_session_closes_with_4401(users: dict[str, Any]) -> None:
    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]
    await assert_refused(await opened(headers=headers))


async def test_an_invalid_device_id_is_refused_with_4400(users: dict[str, Any]) -> None:
    key = await database_sync_to_async(token_for)(users["bob"])
    device = await opened(f"?token={key}&device_id={'d' * 65}")
    event = await device.next()
    assert event["type"] == "error" and event["error"]["code"] == "validation_error"
    assert await device.next() == {"type": "<closed>", "code": 4400}
