"""When the server pushes, end to end: services -> push rows -> delivery worker -> a real
signed HTTP gateway on 127.0.0.1 (tests/push/conftest.py). Nothing inside the app is mocked."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from invitations import services
from invitations.models import CallEvent, DeviceConnection
from invitations.push import devices
from invitations.push.models import DeliveryState, PushDelivery, PushDevice
from invitations.services import blocks

from .conftest import Gateway, deliver

pytestmark = pytest.mark.django_db(transaction=True)


def register(user: Any, device_id: str, provider: str = "fcm", token: str = "") -> PushDevice:
    if not token:
        hexed = f"{device_id}{user.pk}".encode().hex()
        token = hexed if "apns" in provider else f"tok-{device_id}-{user.pk}"
    device, _ = devices.register(
        user=user, device_id=device_id, provider=provider, token=token, subscription={}
    )
    return device


def socket(user: Any, device_id: str) -> None:
    """An open socket of this device, as the realtime layer records it."""
    DeviceConnection.objects.create(
        user=user,
        device_id=device_id,
        channel_name=f"test.{user.pk}.{device_id}",
        server_id="tests",
        last_seen=timezone.now(),
    )


def ring(users: dict[str, Any], invitee: str = "bob", **kwargs: Any) -> str:
    result = services.invite(inviter=users["alice"], invitees=[invitee], **kwargs)
    return str(result.call["id"])


def test_bob_without_a_socket_gets_the_ring_then_the_stop_when_alice_cancels(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    call_id = ring(users, extended_data="hello")

    assert deliver() == 1
    [ringing] = push_on.received
    payload = ringing.notification
    assert payload["type"] == "call.ring" and payload["v"] == 1
    assert payload["call_id"] == call_id
    assert payload["inviter"] == {"username": "alice", "display_name": "Alice"}
    assert payload["call_type"] == "video" and payload["extended_data"] == "hello"
    assert payload["deadline"]
    assert ringing.device == {
        "device_id": "phone",
        "provider": "fcm",
        "token": f"tok-phone-{users['bob'].pk}",
        "app_id": "",
    }

    services.cancel(actor=users["alice"], call_id=call_id)
    assert deliver() == 1
    stop = push_on.received[1].notification
    assert stop["type"] == "call.ring_stopped" and stop["reason"] == "cancelled"
    assert stop["call_id"] == call_id and "extended_data" not in stop


def test_a_socket_that_never_acks_gets_the_push_after_the_grace(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    socket(users["bob"], "phone")  # iOS keeps a suspended app's socket looking open
    ring(users)

    assert deliver() == 0  # not at once: the socket has PUSH_ACK_GRACE to ack
    assert push_on.received == []
    time.sleep(0.6)
    assert deliver() == 1
    assert push_on.types() == [("call.ring", "phone")]


def test_a_socket_that_acks_within_the_grace_gets_no_push(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    socket(users["bob"], "phone")
    call_id = ring(users)
    services.acknowledge(actor=users["bob"], call_id=call_id, device_id="phone")

    time.sleep(0.6)
    deliver()
    assert push_on.received == []
    row = PushDelivery.objects.get()
    assert row.state == DeliveryState.CANCELLED


def test_devices_without_a_socket_ring_at_once_beside_one_that_has_a_socket(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    register(users["bob"], "laptop")
    socket(users["bob"], "laptop")
    ring(users)
    deliver()
    assert push_on.types() == [("call.ring", "phone")]


def test_answering_on_one_device_stops_the_others_with_answered_elsewhere(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    register(users["bob"], "tablet")
    call_id = ring(users)
    assert deliver() == 2

    services.accept(actor=users["bob"], call_id=call_id, device_id="phone")
    assert deliver() == 1
    assert push_on.types()[2:] == [("call.ring_stopped", "tablet")]
    assert push_on.received[2].notification["reason"] == "answered_elsewhere"


def test_rejecting_on_one_device_stops_the_others_with_rejected(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    register(users["bob"], "tablet")
    call_id = ring(users)
    deliver()
    services.reject(actor=users["bob"], call_id=call_id, device_id="tablet")
    deliver()
    assert push_on.types()[2:] == [("call.ring_stopped", "phone")]
    assert push_on.received[2].notification["reason"] == "rejected"


def test_a_timed_out_invitation_stops_with_timeout(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    register(users["carol"], "phone")
    result = services.invite(inviter=users["alice"], invitees=["bob", "carol"], timeout=1)
    deliver()
    services.accept(actor=users["carol"], call_id=result.call["id"])
    deliver()
    time.sleep(1.05)
    assert services.expire_many(
        participant_ids=list(
            PushDelivery.objects.filter(participant__user=users["bob"]).values_list(
                "participant_id", flat=True
            )
        )
    )
    deliver()
    stops = [r.notification for r in push_on.received if r.notification["type"] != "call.ring"]
    # carol accepted on a device with no push registration: her phone is told too.
    assert sorted(s["reason"] for s in stops) == ["answered_elsewhere", "timeout"]


def test_ending_the_call_stops_whoever_still_rings_with_ended(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["carol"], "phone")
    call_id = ring(users)
    services.accept(actor=users["bob"], call_id=call_id)
    services.add_invitees(actor=users["alice"], call_id=call_id, invitees=["carol"])
    deliver()
    services.end(actor=users["bob"], call_id=call_id)
    deliver()
    assert [r.notification.get("reason") for r in push_on.received] == [None, "ended"]


def test_a_ring_never_sent_is_withdrawn_rather_than_stopped(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    call_id = ring(users)
    services.cancel(actor=users["alice"], call_id=call_id)  # before any worker ran
    assert deliver() == 0
    assert push_on.received == []
    assert PushDelivery.objects.get().state == DeliveryState.CANCELLED


def test_busy_users_get_nothing(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    services.invite(inviter=users["carol"], invitees=["dave"])
    services.invite(inviter=users["bob"], invitees=["erin"])  # bob is now busy ringing erin
    result = services.invite(inviter=users["alice"], invitees=["bob"])
    assert result.call["participants"][1]["reason"] == "busy"
    deliver()
    assert push_on.received == []
    assert not PushDelivery.objects.exists()


def test_users_who_blocked_the_caller_get_nothing(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    blocks.block(blocker=users["bob"], username="alice")
    ring(users)
    deliver()
    assert push_on.received == []


def test_a_rejected_token_removes_the_device(users: dict[str, Any], push_on: Gateway) -> None:
    device = register(users["bob"], "phone")
    push_on.script(200, {"rejected": [device.token]})
    ring(users)
    deliver()
    assert not PushDevice.objects.filter(pk=device.pk).exists()
    row = PushDelivery.objects.get()
    assert row.state == DeliveryState.DEAD and row.push_device is None


def test_another_users_rejected_token_does_not_remove_this_device(
    users: dict[str, Any], push_on: Gateway
) -> None:
    device = register(users["bob"], "phone")
    push_on.script(200, {"rejected": ["someone-else"]})
    ring(users)
    deliver()
    assert PushDevice.objects.filter(pk=device.pk).exists()
    assert PushDelivery.objects.get().state == DeliveryState.SENT


def test_a_push_that_would_land_after_the_deadline_is_dropped(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    ring(users, timeout=1)
    time.sleep(1.1)  # the worker was down until past the deadline
    deliver()
    assert push_on.received == []
    row = PushDelivery.objects.get()
    assert row.state == DeliveryState.EXPIRED and row.attempts == 0
    event = CallEvent.objects.get(kind=CallEvent.Kind.PUSH)
    assert event.data["outcome"] == "expired"


def test_retries_back_off_and_stop_at_the_deadline(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    for _ in range(50):
        push_on.script(503)
    ring(users, timeout=2)
    row = PushDelivery.objects.get()
    end = time.monotonic() + 3
    while time.monotonic() < end:
        deliver()
        time.sleep(0.05)
    row.refresh_from_db()
    assert row.state in (DeliveryState.FAILED, DeliveryState.EXPIRED)
    assert 2 <= row.attempts <= 15, row.attempts  # backed off, not hammering
    retries = CallEvent.objects.filter(kind=CallEvent.Kind.PUSH, data__outcome="retry")
    sent = [e for e in retries if e.data["status"] is not None]  # requests the gateway answered
    assert len(sent) >= 2
    last = max(datetime.fromisoformat(e.data["started_at"]) for e in sent)
    assert last < row.not_after  # never a request started after the deadline
    assert push_on.received == []


def test_retry_after_is_honoured(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    push_on.script(429, retry_after="1")
    ring(users)
    before = timezone.now()
    deliver()
    row = PushDelivery.objects.get()
    assert row.state == DeliveryState.PENDING and row.last_status == 429
    assert row.next_attempt_at >= before + timedelta(seconds=1)
    assert deliver() == 0  # not due yet
    time.sleep(1.05)
    assert deliver() == 1
    row.refresh_from_db()
    assert row.state == DeliveryState.SENT and row.attempts == 2
    assert push_on.types() == [("call.ring", "phone")]


def test_every_attempt_is_on_the_calls_timeline(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "phone")
    push_on.script(503)
    call_id = ring(users)
    deliver()
    time.sleep(0.45)
    deliver()
    events = list(CallEvent.objects.filter(call_id=call_id, kind=CallEvent.Kind.PUSH))
    assert [e.data["outcome"] for e in events] == ["retry", "sent"]
    for e in events:
        assert e.subject == users["bob"]
        assert e.data["provider"] == "fcm" and e.data["push"] == "ring"
        assert e.data["latency_ms"] > 0
    assert [e.data["status"] for e in events] == [503, 200]


def test_a_voip_device_rings_over_voip_and_stops_over_an_alert(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "iphone", "apns_voip")
    register(users["bob"], "iphone", "apns")
    call_id = ring(users)
    deliver()
    services.cancel(actor=users["alice"], call_id=call_id)
    deliver()
    assert [(r.notification["type"], r.device["provider"]) for r in push_on.received] == [
        ("call.ring", "apns_voip"),
        ("call.ring_stopped", "apns"),
    ]


def test_a_voip_only_device_gets_no_stop(users: dict[str, Any], push_on: Gateway) -> None:
    register(users["bob"], "iphone", "apns_voip")
    call_id = ring(users)
    deliver()
    services.cancel(actor=users["alice"], call_id=call_id)
    deliver()
    assert push_on.types() == [("call.ring", "iphone")]


def test_extended_data_is_left_out_when_the_payload_would_pass_3500_bytes(
    users: dict[str, Any], push_on: Gateway, settings: Any
) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "EXTENDED_DATA_MAX_BYTES": 8000}
    register(users["bob"], "phone")
    register(users["carol"], "phone")
    services.invite(inviter=users["alice"], invitees=["bob"], extended_data="x" * 3400)
    services.invite(inviter=users["dave"], invitees=["carol"], extended_data="y" * 3000)
    deliver()
    by_user = {r.device["token"]: r.notification for r in push_on.received}
    assert "extended_data" not in by_user[f"tok-phone-{users['bob'].pk}"]
    assert by_user[f"tok-phone-{users['carol'].pk}"]["extended_data"] == "y" * 3000


def test_with_push_off_nothing_is_written(users: dict[str, Any], gateway: Gateway) -> None:
    register(users["bob"], "phone")
    call_id = ring(users)
    services.cancel(actor=users["alice"], call_id=call_id)
    assert not PushDelivery.objects.exists()


def test_pushes_owed_when_the_worker_was_down_go_out_when_one_starts(
    users: dict[str, Any], push_on: Gateway
) -> None:
    register(users["bob"], "phone")
    register(users["carol"], "phone")
    ring(users, invitee="bob")
    services.invite(inviter=users["dave"], invitees=["carol"])
    # No worker ran yet; the rows wait in the database. A new worker (a restart) sends them.
    assert PushDelivery.objects.filter(state=DeliveryState.PENDING).count() == 2
    deliver()
    assert len(push_on.received) == 2


def test_a_refused_signature_is_logged_loudly_retried_and_keeps_the_device(
    users: dict[str, Any], push_on: Gateway, settings: Any, caplog: Any
) -> None:
    settings.PUSH_WEBHOOK_SECRET = "whsec_" + "B" * 32  # not the gateway's: it answers 401
    device = register(users["bob"], "phone")
    ring(users)
    deliver()
    assert PushDevice.objects.filter(pk=device.pk).exists()
    row = PushDelivery.objects.get()
    assert row.state == DeliveryState.PENDING and row.last_status == 401  # retried (API.md)
    assert any(
        r.levelname == "ERROR" and "refused our credentials" in r.getMessage()
        for r in caplog.records
    )


def test_an_apns_410_spares_a_device_registered_again_after_it(
    users: dict[str, Any], push_on: Gateway
) -> None:
    from invitations.push import delivery
    from invitations.push.senders.base import Outcome, PushResult

    old = register(users["bob"], "phone", "apns")
    again = register(users["carol"], "phone", "apns")
    ring(users)
    services.invite(inviter=users["dave"], invitees=["carol"])
    jobs = delivery.claim_due(timezone.now())
    assert len(jobs) == 2
    # Apple's 410 says the token has been invalid since this moment: bob's registration is
    # older (removed), carol's is newer (say the app registered the same token again: kept).
    PushDevice.objects.filter(pk=again.pk).update(
        registered_at=timezone.now() + timedelta(seconds=5)
    )
    dead_since = timezone.now() + timedelta(seconds=1)
    for job in jobs:
        result = PushResult(Outcome.DEAD, status=410, detail="Unregistered", dead_since=dead_since)
        delivery.record(job, result, 12.0, timezone.now())
    assert list(PushDevice.objects.values_list("pk", flat=True)) == [again.pk]
    assert not PushDevice.objects.filter(pk=old.pk).exists()
