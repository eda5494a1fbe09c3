"""API tokens: one per device, stored hashed, expiring 30 days after their last use; revoking one
or all; tokens hidden in the admin; single-use WebSocket tickets (API.md "REST")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from invitations import tokens
from tests.callflow import error_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(username: str = "bob", device_id: str | None = None) -> dict[str, Any]:
    body = {"username": username, "password": PASSWORD}
    if device_id is not None:
        body["device_id"] = device_id
    res = APIClient().post("/api/auth/token/", body, format="json")
    assert res.status_code == 200, res.content
    return res.json()


def with_token(token: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def works(token: str) -> bool:
    return with_token(token).get("/api/me/").status_code == 200


def test_a_token_expires_in_30_days_and_only_its_hash_is_stored(users: dict[str, Any]) -> None:
    answer = login(device_id="phone")
    expires = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    row = AuthToken.objects.get(user=users["bob"])
    assert answer["token"] not in (row.digest, row.token_key)
    assert row.digest != answer["token"] and len(row.digest) == 128
    assert works(answer["token"])


def test_one_token_per_device_a_new_login_replaces_that_devices_token(
    users: dict[str, Any],
) -> None:
    phone = login(device_id="phone")["token"]
    laptop = login(device_id="laptop")["token"]
    phone_again = login(device_id="phone")["token"]
    assert not works(phone)
    assert works(laptop) and works(phone_again)


def test_deleting_the_token_revokes_only_the_one_presented(users: dict[str, Any]) -> None:
    phone, laptop = login(device_id="phone")["token"], login(device_id="laptop")["token"]
    assert with_token(phone).delete("/api/auth/token/").status_code == 204
    assert not works(phone)
    assert works(laptop)


def test_deleting_tokens_revokes_every_token_of_the_user(
    users: dict[str, Any], client_for: Any
) -> None:
    phone, laptop = login(device_id="phone")["token"], login(device_id="laptop")["token"]
    assert with_token(phone).delete("/api/auth/tokens/").status_code == 204
    assert not works(phone) and not works(laptop)
    assert client_for("alice").get("/api/me/").status_code == 200  # others keep theirs


def test_an_expired_token_is_refused_and_use_renews_a_live_one(users: dict[str, Any]) -> None:
    token = login(device_id="phone")["token"]
    row = AuthToken.objects.get(user=users["bob"])
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() + timedelta(days=2))
    assert works(token)
    row.refresh_from_db()
    assert row.expiry > timezone.now() + timedelta(days=29)  # renewed on use
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    error_of(with_token(token).get("/api/me/"), 401, "not_authenticated")


def test_a_password_change_revokes_every_token(users: dict[str, Any]) -> None:
    token = login(device_id="phone")["token"]
    bob = users["bob"]
    bob.set_password("a-new-password-123")
    bob.save()
    assert not works(token)


def test_tokens_issued_before_hashing_keep_working(users: dict[str, Any]) -> None:
    legacy_key = "0123456789abcdef0123456789abcdef01234567"  # a DRF key, 40 hex digits
    tokens.import_keys([(users["bob"], legacy_key)])
    assert works(legacy_key)
    assert not AuthToken.objects.filter(digest=legacy_key).exists()


def test_the_admin_never_shows_a_token(users: dict[str, Any]) -> None:
    token = login(device_id="phone")["token"]
    row = AuthToken.objects.get(user=users["bob"])
    admin = Client()
    users["alice"].is_staff = users["alice"].is_superuser = True
    users["alice"].save()
    admin.force_login(users["alice"])
    page = admin.get("/admin/knox/authtoken/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "phone" in html
    # (The digest, a SHA-512 of the token, is the row's id in URLs: it opens nothing.)
    for secret in (token, row.token_key):
        assert secret not in html
    assert admin.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert admin.get("/admin/knox/authtoken/add/").status_code == 403


def test_a_websocket_ticket_is_issued_to_a_signed_in_caller(
    users: dict[str, Any], client_for: Any
) -> None:
    error_of(APIClient().post("/api/ws/ticket/"), 401, "not_authenticated")
    res = client_for("bob").post("/api/ws/ticket/")
    assert res.status_code == 200, res.content
    body = res.json()
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=25) < expires - timezone.now() <= timedelta(seconds=30)
    credential = tokens.redeem_ticket(body["ticket"])
    assert credential is not None and credential.user == users["bob"]
    assert tokens.redeem_ticket(body["ticket"]) is None  # single use


def test_the_checked_user_is_the_whole_user_as_the_orm_reads_it(users: dict[str, Any]) -> None:
    """``tokens.check`` reads the token and its user in one plain statement: every field comes
    back as the ORM gives it (times aware, flags booleans), on SQLite and PostgreSQL."""
    from django.contrib.auth import get_user_model

    alice = users["alice"]
    alice.last_login = timezone.now() - timedelta(hours=3)
    alice.first_name, alice.email, alice.is_staff = "Alíce", "alice@example.org", True
    alice.save()
    key, _ = tokens.issue(user=alice, device_id="orm-check")
    credential = tokens.check(key)
    assert credential is not None
    expected = get_user_model().objects.get(pk=alice.pk)
    for field in get_user_model()._meta.concrete_fields:
        got, want = getattr(credential.user, field.attname), getattr(expected, field.attname)
        assert (got, type(got)) == (want, type(want)), field.name
    assert credential.user == expected and not credential.user._state.adding
    credential.user.save()  # a full instance: saving it changes nothing
    assert get_user_model().objects.get(pk=alice.pk).last_login == alice.last_login

    alice.is_active = False
    alice.save()
    assert tokens.check(key) is None
