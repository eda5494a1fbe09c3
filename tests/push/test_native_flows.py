"""Ring and stop end to end through the real provider senders and their fixture servers:
services -> push rows -> delivery worker -> Web Push / APNs / FCM on 127.0.0.1.

The delivery side (devices, worker, ``deliver()``) comes from the push-core work; until it is
merged this module skips.
"""

from __future__ import annotations

from typing import Any

import pytest

devices = pytest.importorskip("invitations.push.devices", reason="needs the push delivery side")
push_models = pytest.importorskip("invitations.push.models")

from invitations import services  # noqa: E402

from .conftest import deliver  # noqa: E402
from .fixtures.apns import APNsServer  # noqa: E402
from .fixtures.fcm import FCMServer  # noqa: E402
from .fixtures.webpush import WebPushService  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def register(user: Any, device_id: str, provider: str, **fields: Any) -> None:
    devices.register(
        user=user,
        device_id=device_id,
        provider=provider,
        token=fields.get("token", ""),
        subscription=fields.get("subscription", {}),
    )


def test_fcm_gets_the_ring_then_the_stop(users: dict[str, Any], fcm_server: FCMServer) -> None:
    register(users["bob"], "phone", "fcm", token="fcm-token-1")
    call = services.invite(inviter=users["alice"], invitees=["bob"])
    assert deliver() == 1
    services.cancel(actor=users["alice"], call_id=call.call["id"])
    assert deliver() == 1

    sends = [r for r in fcm_server.received if r.path.endswith("messages:send")]
    assert [r.problems for r in sends] == [[], []]
    assert [r.payload["data"]["type"] for r in sends] == ["call.ring", "call.ring_stopped"]
    assert sends[1].payload["data"]["reason"] == "cancelled"
    assert {r.payload["android"]["collapse_key"] for r in sends} == {str(call.call["id"])}


def test_an_apns_410_removes_the_voip_device(
    users: dict[str, Any], apns_server: APNsServer
) -> None:
    token = "ab" * 32
    register(users["bob"], "phone", "apns_voip", token=token)
    apns_server.gone(token)
    services.invite(inviter=users["alice"], invitees=["bob"])
    assert deliver() == 1
    [got] = apns_server.received
    assert got.problems == [] and got.status == 410
    assert not push_models.PushDevice.objects.filter(token=token).exists()


def test_a_browser_gets_the_ring_decrypted(
    users: dict[str, Any], webpush_service: WebPushService, settings: Any
) -> None:
    settings.WEBPUSH_ENDPOINT_HOSTS = ["127.0.0.1"]
    register(users["bob"], "browser", "webpush", subscription=webpush_service.subscribe())
    call = services.invite(inviter=users["alice"], invitees=["bob"])
    assert deliver() == 1
    [got] = webpush_service.received
    assert got.problems == []
    assert got.payload["type"] == "call.ring" and got.payload["call_id"] == str(call.call["id"])
