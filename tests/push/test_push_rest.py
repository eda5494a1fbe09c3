"""API.md "Push" over REST: the config, registering, listing and removing push devices, the
REST ack, and that logging a device out removes its push registrations."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from invitations import tokens
from invitations.models import Participant
from invitations.push.models import PushDevice
from tests.callflow import start_call

from .conftest import Gateway

pytestmark = pytest.mark.django_db

P256DH = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("=")
AUTH = base64.urlsafe_b64encode(b"\x02" * 16).decode().rstrip("=")


@pytest.fixture
def webpush_on(settings: Any, push_on: Gateway) -> None:
    """Web Push configured (registering sends nothing: any key will do)."""
    settings.WEBPUSH_VAPID_PRIVATE_KEY = "test-private"
    settings.WEBPUSH_VAPID_PUBLIC_KEY = "BTestPublicKey"
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:ops@callsite.test"
    settings.WEBPUSH_ENDPOINT_HOSTS = ["127.0.0.1", "push.services.mozilla.com"]


def phone_of(users: dict[str, Any], name: str, device_id: str = "phone") -> APIClient:
    token, _ = tokens.issue(user=users[name], device_id=device_id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def fcm(device_id: str = "phone", token: str = "fcm-token-1", **extra: Any) -> dict[str, Any]:
    return {"device_id": device_id, "provider": "fcm", "token": token, **extra}


def error_fields(res: Any) -> set[str]:
    assert res.status_code == 400, res.content
    body = res.json()["error"]
    assert body["code"] == "validation_error"
    return set(body["details"])


def test_config_with_push_off_lists_no_provider(client_for: Any) -> None:
    res = client_for("alice").get("/api/push/config/")
    assert res.status_code == 200
    assert res.json() == {"providers": [], "webpush": None}


def test_config_lists_the_configured_providers_and_the_vapid_key(
    client_for: Any, webpush_on: None
) -> None:
    res = client_for("alice").get("/api/push/config/")
    assert res.json() == {
        "providers": ["webpush", "apns", "apns_voip", "fcm"],
        "webpush": {"vapid_public_key": "BTestPublicKey"},
    }


def test_webpush_is_off_without_a_vapid_subject(
    client_for: Any, webpush_on: None, settings: Any
) -> None:
    settings.WEBPUSH_VAPID_SUBJECT = ""  # push services would refuse every VAPID token
    res = client_for("alice").get("/api/push/config/")
    assert res.json()["webpush"] is None and "webpush" not in res.json()["providers"]


def test_config_needs_a_login() -> None:
    res = APIClient().get("/api/push/config/")
    assert res.status_code == 401
    assert res.json()["error"]["code"] == "not_authenticated"


def test_register_list_and_remove(users: dict[str, Any], push_on: Gateway) -> None:
    bob = phone_of(users, "bob")
    res = bob.post("/api/push/devices/", fcm(app_id="org.example.app"), format="json")
    assert res.status_code == 201
    device = res.json()["device"]
    assert set(device) == {"id", "device_id", "provider", "app_id", "created_at", "last_used_at"}
    assert device["provider"] == "fcm" and device["app_id"] == "org.example.app"
    assert device["last_used_at"] is None
    # The same registration again: 200, the same row.
    again = bob.post("/api/push/devices/", fcm(app_id="org.example.app"), format="json")
    assert again.status_code == 200 and again.json()["device"]["id"] == device["id"]

    assert bob.get("/api/push/devices/").json() == [device]
    assert bob.delete(f"/api/push/devices/{device['id']}/").status_code == 204
    assert bob.get("/api/push/devices/").json() == []
    assert bob.delete(f"/api/push/devices/{device['id']}/").status_code == 404


def test_someone_elses_device_cannot_be_removed(users: dict[str, Any], push_on: Gateway) -> None:
    bob = phone_of(users, "bob")
    device = bob.post("/api/push/devices/", fcm(), format="json").json()["device"]
    res = phone_of(users, "carol").delete(f"/api/push/devices/{device['id']}/")
    assert res.status_code == 404 and res.json()["error"]["code"] == "not_found"
    assert PushDevice.objects.filter(pk=device["id"]).exists()


def test_a_token_registered_by_another_user_moves_to_them(
    users: dict[str, Any], push_on: Gateway
) -> None:
    phone_of(users, "bob").post("/api/push/devices/", fcm(), format="json")
    carol = phone_of(users, "carol")
    res = carol.post("/api/push/devices/", fcm(), format="json")
    assert res.status_code == 201
    assert list(PushDevice.objects.values_list("user__username", flat=True)) == ["carol"]
    assert phone_of(users, "bob", "other").get("/api/push/devices/").json() == []


def test_a_new_token_for_the_same_device_replaces_the_old(
    users: dict[str, Any], push_on: Gateway
) -> None:
    bob = phone_of(users, "bob")
    bob.post("/api/push/devices/", fcm(token="old"), format="json")
    bob.post("/api/push/devices/", fcm(token="new"), format="json")
    assert list(PushDevice.objects.values_list("token", flat=True)) == ["new"]


def test_a_webpush_subscription_registers(users: dict[str, Any], webpush_on: None) -> None:
    sub = {"endpoint": "http://127.0.0.1:9/push/abc", "keys": {"p256dh": P256DH, "auth": AUTH}}
    res = phone_of(users, "bob").post(
        "/api/push/devices/",
        {"device_id": "browser", "provider": "webpush", "subscription": sub},
        format="json",
    )
    assert res.status_code == 201, res.content
    row = PushDevice.objects.get()
    assert row.token == sub["endpoint"] and row.subscription == sub


def test_a_provider_this_server_does_not_push_through_is_refused(
    users: dict[str, Any], push_on: Gateway
) -> None:
    sub = {
        "endpoint": "https://push.services.mozilla.com/x",
        "keys": {"p256dh": P256DH, "auth": AUTH},
    }
    res = phone_of(users, "bob").post(
        "/api/push/devices/",
        {"device_id": "b", "provider": "webpush", "subscription": sub},
        format="json",
    )
    assert error_fields(res) == {"provider"}


GOOD_SUB = {
    "endpoint": "https://push.services.mozilla.com/x",
    "keys": {"p256dh": P256DH, "auth": AUTH},
}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"provider": "fcm", "token": "t"}, "device_id"),
        (fcm(device_id="x" * 65), "device_id"),
        (fcm(device_id="a\nb"), "device_id"),
        (fcm(device_id=7), "device_id"),
        ({"device_id": "p", "provider": "gcm", "token": "t"}, "provider"),
        ({"device_id": "p", "token": "t"}, "provider"),
        ({"device_id": "p", "provider": "fcm"}, "token"),
        (fcm(token=""), "token"),
        (fcm(token=["t"]), "token"),
        (fcm(token="t" * 1025), "token"),
        (fcm(token="has space"), "token"),
        (fcm(token="ctl\x01char"), "token"),
        (fcm(token="ünicode"), "token"),
        ({"device_id": "p", "provider": "apns", "token": "not-hex"}, "token"),
        ({"device_id": "p", "provider": "apns_voip"}, "token"),
        (fcm(subscription=GOOD_SUB), "subscription"),
        (fcm(app_id="a" * 201), "app_id"),
        (fcm(app_id="bad\u202eid"), "app_id"),
        (fcm(app_id=5), "app_id"),
        ({"device_id": "b", "provider": "webpush"}, "subscription"),
        ({"device_id": "b", "provider": "webpush", "subscription": "x"}, "subscription"),
        (
            {"device_id": "b", "provider": "webpush", "subscription": GOOD_SUB, "token": "t"},
            "token",
        ),
        (
            {"device_id": "b", "provider": "webpush", "subscription": {"keys": GOOD_SUB["keys"]}},
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "endpoint": "not a url"},
            },
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "endpoint": "ftp://push.services.mozilla.com/x"},
            },
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "endpoint": "http://push.services.mozilla.com/x"},
            },
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "endpoint": "https://10.0.0.1/internal"},
            },
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "endpoint": "https://u:p@push.services.mozilla.com/"},
            },
            "subscription.endpoint",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {
                    **GOOD_SUB,
                    "endpoint": "https://push.services.mozilla.com/" + "x" * 1024,
                },
            },
            "subscription.endpoint",
        ),
        (
            {"device_id": "b", "provider": "webpush", "subscription": {**GOOD_SUB, "keys": None}},
            "subscription.keys",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "keys": {"p256dh": "!!", "auth": AUTH}},
            },
            "subscription.keys.p256dh",
        ),
        (
            {
                "device_id": "b",
                "provider": "webpush",
                "subscription": {**GOOD_SUB, "keys": {"p256dh": P256DH, "auth": P256DH}},
            },
            "subscription.keys.auth",
        ),
    ],
)
def test_bad_registrations_answer_400_naming_the_field(
    users: dict[str, Any], webpush_on: None, payload: dict[str, Any], field: str
) -> None:
    res = phone_of(users, "bob").post("/api/push/devices/", payload, format="json")
    assert error_fields(res) == {field}
    assert not PushDevice.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(users: dict[str, Any], push_on: Gateway) -> None:
    res = phone_of(users, "bob").post("/api/push/devices/", ["x"], format="json")
    assert error_fields(res) == {"non_field_errors"}


def test_revoking_the_devices_token_removes_its_push_devices(
    users: dict[str, Any], push_on: Gateway
) -> None:
    phone = phone_of(users, "bob", "phone")
    tablet = phone_of(users, "bob", "tablet")
    phone.post("/api/push/devices/", fcm("phone", "t-phone"), format="json")
    tablet.post("/api/push/devices/", fcm("tablet", "t-tablet"), format="json")

    assert phone.delete("/api/auth/token/").status_code == 204
    assert list(PushDevice.objects.values_list("device_id", flat=True)) == ["tablet"]


def test_revoking_every_token_removes_every_push_device_registered_with_one(
    users: dict[str, Any], push_on: Gateway
) -> None:
    phone = phone_of(users, "bob", "phone")
    phone.post("/api/push/devices/", fcm("phone", "t-phone"), format="json")
    phone_of(users, "bob", "tablet").post(
        "/api/push/devices/", fcm("tablet", "t-tablet"), format="json"
    )
    assert phone.delete("/api/auth/tokens/").status_code == 204
    assert not PushDevice.objects.exists()


def test_logging_in_again_on_the_device_logs_its_old_registration_out(
    users: dict[str, Any], push_on: Gateway
) -> None:
    phone_of(users, "bob", "phone").post("/api/push/devices/", fcm(), format="json")
    phone_of(users, "bob", "phone")  # a new token for the same device replaces the old one
    assert not PushDevice.objects.exists()


def test_rest_ack_moves_the_invitation_to_received(users: dict[str, Any], client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    bob = client_for("bob")
    res = bob.post(f"/api/calls/{call['id']}/ack/", {"device_id": "phone"}, format="json")
    assert res.status_code == 200
    assert res.json()["call"]["participants"][1]["state"] == "received"
    # A second ack is a no-op, answered all the same.
    assert bob.post(f"/api/calls/{call['id']}/ack/", {}, format="json").status_code == 200
    assert Participant.objects.get(user=users["bob"]).state == "received"


def test_rest_ack_errors(users: dict[str, Any], client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    alice = client_for("alice")
    res = alice.post(f"/api/calls/{call['id']}/ack/", {}, format="json")
    assert res.status_code == 403 and res.json()["error"]["code"] == "permission_denied"
    res = client_for("carol").post(f"/api/calls/{call['id']}/ack/", {}, format="json")
    assert res.status_code == 404
    res = client_for("bob").post(
        f"/api/calls/{call['id']}/ack/", {"device_id": "x" * 65}, format="json"
    )
    assert error_fields(res) == {"device_id"}


def test_a_password_change_removes_the_push_devices_registered_with_a_token(
    users: dict[str, Any], push_on: Gateway
) -> None:
    phone_of(users, "bob", "phone").post(
        "/api/push/devices/", fcm("phone", "t-phone"), format="json"
    )
    browser = APIClient()
    browser.force_authenticate(users["bob"])  # a session: no token to hang the registration off
    browser.post("/api/push/devices/", fcm("browser", "t-browser"), format="json")

    bob = users["bob"]
    bob.set_password("a new password")
    bob.save()
    # The token-made registration goes with the token; the session-made one stays (the browser
    # app deletes it itself at sign-out).
    assert list(PushDevice.objects.values_list("device_id", flat=True)) == ["browser"]


@pytest.mark.parametrize("end", ["cancel", "reject", "accept"])
def test_rest_ack_of_an_invitation_that_no_longer_rings_is_409(
    users: dict[str, Any], client_for: Any, end: str
) -> None:
    call = start_call(client_for("alice"), "bob")
    actor = client_for("alice" if end == "cancel" else "bob")
    assert actor.post(f"/api/calls/{call['id']}/{end}/", {}, format="json").status_code == 200
    res = client_for("bob").post(f"/api/calls/{call['id']}/ack/", {}, format="json")
    assert res.status_code == 409 and res.json()["error"]["code"] == "invalid_state"
