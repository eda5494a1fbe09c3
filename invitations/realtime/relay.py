"""WebRTC signalling relay rules: who may send an ``rtc.signal`` to whom, and to which device.

ARCHITECTURE.md lists "WebRTC signalling relay rules" under ``calls/``, but the /ws/ consumer
that applies them lives in ``invitations/realtime/``, and ``invitations`` must not import
``calls``. The rules are about call membership (participant states, the device that accepted),
which is ``invitations``' domain, so they live here; ``calls`` may import them if its pages need
them.

The rules (API.md "Client -> server"):
- only between two different participants of the same call that has not ended, both
  ``accepted``; anything else is an error and nothing is relayed;
- the signal goes to the device with which the recipient accepted (``Participant.device_id``),
  or to every device of theirs when they named none.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import User

from ..errors import CallError, validation_error
from ..models import LIVE_CALL_STATES, Participant, ParticipantState


@dataclass(frozen=True)
class RelayTarget:
    call_id: str
    user_id: int
    device_id: str  # "" means every device of the user


def resolve(*, sender: User, call_id: UUID, to: str) -> RelayTarget:
    """Check that ``sender`` may signal ``to`` in this call; say where the signal goes."""
    if to == sender.get_username():
        raise validation_error("to", "You cannot signal yourself.")
    mine = Participant.objects.select_related("call").filter(call_id=call_id, user=sender).first()
    if mine is None:
        raise CallError("not_found", "No such call.")
    if mine.call.state not in LIVE_CALL_STATES:
        raise CallError("invalid_state", "This call has ended.")
    if mine.state != ParticipantState.ACCEPTED:
        raise CallError("invalid_state", "Only participants in the call can signal.")
    theirs = (
        Participant.objects.filter(call_id=call_id, user__username=to)
        .values_list("user_id", "state", "device_id")
        .first()
    )
    if theirs is None:
        raise CallError("not_found", f"{to} is not a participant of this call.")
    user_id, state, device_id = theirs
    if state != ParticipantState.ACCEPTED:
        raise CallError("invalid_state", f"{to} is not in the call ({state}).")
    return RelayTarget(call_id=str(call_id), user_id=user_id, device_id=device_id or "")
