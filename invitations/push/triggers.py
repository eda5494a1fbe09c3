"""When to push: the rings and stops a transition owes to devices, written in its transaction.

The services never mention push: they tell their ``Outbox`` that an invitee started ringing
(``box.ring``) or stopped (``box.ring_stopped``), and ``events.send_on_commit`` hands those
notes here before the commit, so a push row exists exactly when the change it announces does.
The delivery worker (``delivery.py``) sends the rows.

- **Ring**: every push device of a new invitee. A device whose ``device_id`` holds no fresh
  socket is due at once; one with a socket is deferred by ``PUSH_ACK_GRACE`` and sent then only
  if no socket of that device acked meanwhile (iOS keeps a suspended app's socket looking open).
  A device with both an ``apns_voip`` and an ``apns`` registration rings through VoIP only.
  Users rejected as busy (or blocked) never reach ``box.ring``: they never rang.
- **Stop**: to every device that got the ring (sent, or tried and still being retried), except
  the device that acted. Rings never tried are withdrawn instead: nothing to stop. Never over
  VoIP (a VoIP push must report a call to CallKit): an ``apns_voip`` device gets its stop on
  the same device's ``apns`` registration when it has one, otherwise none.

Cost on the call path: nothing when no provider is configured; otherwise one query for the
invitees' (or stopping participants') push rows, and more only for users who have some.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

from .. import presence
from ..models import Call, DeviceConnection, Participant
from ..snapshots import display_name
from . import registry
from .models import DeliveryState, Provider, PushDelivery, PushDevice, PushKind

# API.md: extended_data is left out when the payload would pass this many bytes.
MAX_PAYLOAD_BYTES = 3500


class StopReason:
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    REJECTED = "rejected"
    ENDED = "ended"


@dataclass(frozen=True)
class Ring:
    call: Call
    participant: Participant
    deadline: datetime


@dataclass(frozen=True)
class Stop:
    call: Call
    participant: Participant
    reason: str
    device_id: str = ""  # the device that acted (accept, reject): it gets no stop


def fit(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, without ``extended_data`` when the whole would pass 3,500 bytes."""
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(encoded) > MAX_PAYLOAD_BYTES and "extended_data" in payload:
        return {k: v for k, v in payload.items() if k != "extended_data"}
    return payload


def ring_payload(call: Call, p: Participant, deadline: datetime) -> dict[str, Any]:
    inviter = p.invited_by or call.inviter  # who invited them (API.md call.invitation_received)
    return fit(
        {
            "v": 1,
            "type": "call.ring",
            "call_id": str(call.pk),
            "inviter": {"username": inviter.get_username(), "display_name": display_name(inviter)},
            "call_type": call.type,
            "deadline": deadline.isoformat(),
            "extended_data": p.extended_data,
        }
    )


def stop_payload(ring: dict[str, Any], reason: str) -> dict[str, Any]:
    stop = {k: v for k, v in ring.items() if k != "extended_data"}
    stop.update(type="call.ring_stopped", reason=reason)
    return stop


def enqueue(rings: list[Ring], stops: list[Stop], now: datetime) -> bool:
    """Write the push rows these notes call for; True when there is something to send."""
    if not registry.enabled() or not (rings or stops):
        return False
    rows: list[PushDelivery] = []
    if rings:
        rows += _ring_rows(rings, now)
    if stops:
        rows += _stop_rows(stops, now)
    if rows:
        PushDelivery.objects.bulk_create(rows)
    return bool(rows)


def _ring_targets(devices: list[PushDevice]) -> list[PushDevice]:
    """One ring per device: VoIP where the device registered it, else each registration."""
    voip = {(d.user_id, d.device_id) for d in devices if d.provider == Provider.APNS_VOIP}
    return [
        d for d in devices if not (d.provider == Provider.APNS and (d.user_id, d.device_id) in voip)
    ]


def _ring_rows(rings: list[Ring], now: datetime) -> list[PushDelivery]:
    providers = registry.configured_providers()
    user_ids = {r.participant.user_id for r in rings}
    devices = list(PushDevice.objects.filter(user_id__in=user_ids, provider__in=providers))
    if not devices:
        return []
    # Which of these devices hold a fresh socket now: those first get the grace to ack.
    with_socket = set(
        DeviceConnection.objects.filter(
            user_id__in={d.user_id for d in devices}, last_seen__gte=presence.fresh_since(now)
        ).values_list("user_id", "device_id")
    )
    grace = timedelta(seconds=settings.PUSH_ACK_GRACE)
    by_user: dict[int, list[PushDevice]] = {}
    for d in _ring_targets(devices):
        by_user.setdefault(d.user_id, []).append(d)
    rows = []
    for ring in rings:
        p = ring.participant
        payload = ring_payload(ring.call, p, ring.deadline)
        for d in by_user.get(p.user_id, []):
            deferred = (d.user_id, d.device_id) in with_socket
            rows.append(
                PushDelivery(
                    push_device=d,
                    call=ring.call,
                    participant=p,
                    provider=d.provider,
                    device_id=d.device_id,
                    kind=PushKind.RING,
                    unless_acked=deferred,
                    payload=payload,
                    not_after=ring.deadline,
                    next_attempt_at=now + grace if deferred else now,
                )
            )
    return rows


def _stop_rows(stops: list[Stop], now: datetime) -> list[PushDelivery]:
    by_participant = {s.participant.pk: s for s in stops}
    rings = list(
        PushDelivery.objects.filter(
            participant_id__in=by_participant, kind=PushKind.RING, push_device__isnull=False
        )
        .filter(Q(state=DeliveryState.SENT) | Q(state=DeliveryState.PENDING))
        .select_related("push_device")
        .order_by("-id")  # a re-invited participant: the latest ring's payload is the one
    )
    if not rings:
        return []
    # Whatever of these rings is still pending will not go now. Those never tried need no stop;
    # a worker may claim one between the read above and this update, so the update decides.
    pending = [r.pk for r in rings if r.state == DeliveryState.PENDING]
    if pending:
        untried = set(
            PushDelivery.objects.filter(
                pk__in=pending, state=DeliveryState.PENDING, attempts=0
            ).values_list("pk", flat=True)
        )
        withdrawn = PushDelivery.objects.filter(pk__in=pending, state=DeliveryState.PENDING).update(
            state=DeliveryState.CANCELLED, last_detail="the ring stopped first"
        )
        if withdrawn < len(pending):
            untried = set()  # raced with a worker: rather a stop too many than one missing
        rings = [r for r in rings if r.pk not in untried]
    voip = [r.push_device for r in rings if r.provider == Provider.APNS_VOIP and r.push_device]
    alert_of: dict[tuple[int, str], PushDevice] = {}
    if voip and Provider.APNS in registry.configured_providers():
        for d in PushDevice.objects.filter(
            user_id__in={d.user_id for d in voip},
            device_id__in={d.device_id for d in voip},
            provider=Provider.APNS,
        ):
            alert_of[(d.user_id, d.device_id)] = d
    ttl = timedelta(seconds=settings.PUSH_STOP_TTL)
    rows = []
    seen: set[tuple[int, int]] = set()
    for ring in rings:
        stop = by_participant[ring.participant_id]
        device = ring.push_device
        if device is None or (stop.device_id and device.device_id == stop.device_id):
            continue
        if device.provider == Provider.APNS_VOIP:
            device = alert_of.get((device.user_id, device.device_id))
            if device is None:
                continue
        if (ring.participant_id, device.pk) in seen:
            continue
        seen.add((ring.participant_id, device.pk))
        rows.append(
            PushDelivery(
                push_device=device,
                call_id=ring.call_id,
                participant_id=ring.participant_id,
                provider=device.provider,
                device_id=device.device_id,
                kind=PushKind.STOP,
                reason=stop.reason,
                payload=stop_payload(ring.payload, stop.reason),
                not_after=now + ttl,
                next_attempt_at=now,
            )
        )
    return rows
