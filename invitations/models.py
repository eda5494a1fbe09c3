"""What the database remembers about calls: the truth every client can re-read."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class CallType(models.TextChoices):
    VIDEO = "video"
    AUDIO = "audio"


class CallState(models.TextChoices):
    RINGING = "ringing"  # nobody but the inviter accepted yet
    ONGOING = "ongoing"  # an invitee accepted
    ENDED = "ended"


class EndReason(models.TextChoices):
    ENDED = "ended"
    CANCELLED = "cancelled"
    UNANSWERED = "unanswered"
    ALL_LEFT = "all_left"
    CALLER_OFFLINE = "caller_offline"


class Role(models.TextChoices):
    INVITER = "inviter"
    INVITEE = "invitee"


class ParticipantState(models.TextChoices):
    INVITING = "inviting"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    QUIT = "quit"


RINGING_STATES = (ParticipantState.INVITING, ParticipantState.RECEIVED)
# A participation in one of these, in a call that has not ended, makes its user busy.
ACTIVE_STATES = (ParticipantState.INVITING, ParticipantState.RECEIVED, ParticipantState.ACCEPTED)
# States from which a user may be invited again into the same call.
REINVITABLE_STATES = (
    ParticipantState.REJECTED,
    ParticipantState.CANCELLED,
    ParticipantState.TIMEOUT,
    ParticipantState.QUIT,
)
LIVE_CALL_STATES = (CallState.RINGING, CallState.ONGOING)
# The reason the server writes when it rejects a busy invitee on their behalf (API.md, busy).
BUSY_REASON = "busy"

# "Rejected as busy" and "missed" are spelled once, here: as a filter for querysets and, beside
# it, as a test for a participant already in memory. The two must say the same thing.
REJECTED_AS_BUSY = models.Q(state=ParticipantState.REJECTED, reason=BUSY_REASON)
# A call I missed: I was invited and it ended for me unanswered (API.md, ?missed=true): my
# invitation timed out or was cancelled, or I was rejected as busy.
MISSED_STATES = (ParticipantState.TIMEOUT, ParticipantState.CANCELLED)
MISSED = models.Q(role=Role.INVITEE) & (models.Q(state__in=MISSED_STATES) | REJECTED_AS_BUSY)


class ParticipantQuerySet(models.QuerySet["Participant"]):
    def ringing(self) -> ParticipantQuerySet:
        return self.filter(state__in=RINGING_STATES)

    def active(self) -> ParticipantQuerySet:
        """Ringing or talking: in a call that has not ended, this makes the user busy."""
        return self.filter(state__in=ACTIVE_STATES)

    def rejected_as_busy(self) -> ParticipantQuerySet:
        return self.filter(REJECTED_AS_BUSY)

    def missed(self) -> ParticipantQuerySet:
        return self.filter(MISSED)


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calls_started"
    )
    type = models.CharField(max_length=8, choices=CallType.choices, default=CallType.VIDEO)
    state = models.CharField(max_length=8, choices=CallState.choices, default=CallState.RINGING)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, null=True, blank=True)
    timeout = models.PositiveIntegerField(help_text="Seconds each invitee rings for.")
    extended_data = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set while the call rings and the inviter has no connected device: the call ends with
    # caller_offline at this moment unless a device of theirs comes back first.
    inviter_offline_deadline = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]
        # Ending someone's call is a write: staff who may only look at calls must not do it.
        permissions = [("force_end_call", "Can force-end calls (admin action)")]

    def __str__(self) -> str:
        return f"{self.type} call {self.id} by {self.inviter} ({self.state})"

    @property
    def is_ended(self) -> bool:
        return self.state == CallState.ENDED


class Participant(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    state = models.CharField(max_length=10, choices=ParticipantState.choices)
    reason = models.CharField(max_length=32, null=True, blank=True)
    extended_data = models.TextField(blank=True, default="")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Null once the participant no longer rings; the timers query this column.
    deadline = models.DateTimeField(null=True, blank=True)
    device_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Device with which they accepted."
    )
    # Set while the participant is accepted and has no connected device: they leave the call
    # (quit) at this moment unless a device of theirs comes back first. Without it a closed
    # tab would keep them "accepted", and busy, for ever.
    offline_deadline = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["call", "user"], name="one_participation_per_call")
        ]
        indexes = [
            # The timer worker loads every pending deadline on start.
            models.Index(
                fields=["deadline"],
                name="participant_pending_deadline",
                condition=models.Q(deadline__isnull=False),
            ),
            # The busy check: does this user hold an active participation?
            models.Index(fields=["user", "state"], name="participant_user_state"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.call_id}: {self.state}"

    @property
    def is_rejected_as_busy(self) -> bool:
        """REJECTED_AS_BUSY, for a participant in memory: they never rang."""
        return self.state == ParticipantState.REJECTED and self.reason == BUSY_REASON

    @property
    def is_missed(self) -> bool:
        """MISSED, for a participant in memory."""
        return self.role == Role.INVITEE and (
            self.state in MISSED_STATES or self.is_rejected_as_busy
        )


class CallEvent(models.Model):
    """Append-only timeline of a call: one row per thing that happened."""

    class Kind(models.TextChoices):
        CREATED = "created"
        INVITED = "invited"
        BUSY = "busy"
        # A participant moving to one of these states is recorded under the state's name.
        RECEIVED = ParticipantState.RECEIVED.value
        ACCEPTED = ParticipantState.ACCEPTED.value
        REJECTED = ParticipantState.REJECTED.value
        CANCELLED = ParticipantState.CANCELLED.value
        TIMEOUT = ParticipantState.TIMEOUT.value
        QUIT = ParticipantState.QUIT.value
        ENDED = "ended"
        # One attempt to push to a device (invitations/push/): provider, outcome, latency.
        PUSH = "push"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Who did it; null for what the server did on its own (timeouts, caller offline).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Whose participation it changed, if any.
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["call", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} in {self.call_id}"


class UserLock(models.Model):
    """One row per user, locked (SELECT ... FOR UPDATE) while deciding whether they are busy.

    Two callers inviting the same free user at once both lock this row; the second waits until
    the first commits and then sees the user busy. On SQLite, IMMEDIATE transactions serialise
    writers, which gives the same guarantee.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"lock for {self.user_id}"


class DeviceConnection(models.Model):
    """One open WebSocket (a device) of a user, as seen by the server process that holds it.

    Presence is "at least one fresh row". The holding process refreshes ``last_seen`` on a
    heartbeat, so rows of a process that died without closing its sockets go stale and are swept
    by the surviving processes: a killed server never leaves users online for ever.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_connections"
    )
    device_id = models.CharField(max_length=64)
    # The socket's channel-layer name: unique per socket, even for two sockets of one device.
    channel_name = models.CharField(max_length=200, unique=True)
    server_id = models.CharField(max_length=64, db_index=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "last_seen"], name="device_user_seen")]

    def __str__(self) -> str:
        return f"{self.user} on {self.device_id}"


class UserPresence(models.Model):
    """What everyone sees of a user's presence: ``online``, kept through a short grace.

    A user's socket count says whether a device is connected now (``DeviceConnection``); this
    row says what subscribers and ``/api/users/`` were told. When the last device goes away,
    ``offline_deadline`` is set ``PRESENCE_GRACE`` seconds ahead and a ``presence_offline`` timer
    scheduled; a device back before it (a page reload) clears it and nobody hears anything. Both
    columns change only under the user's ``UserLock`` row, and the deadline is a column so the
    grace survives a restart (the timer worker reloads it, as it does every deadline).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    online = models.BooleanField(default=False)
    offline_deadline = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.user_id} {'online' if self.online else 'offline'}"


class TokenDevice(models.Model):
    """Which device an API token was issued to (API.md: one token per device).

    The token itself is django-rest-knox's ``AuthToken``: only a hash of it is stored, and it
    expires. Logging in again with the same ``device_id`` replaces that device's token, so a lost
    phone is revoked alone (``DELETE /api/auth/token/`` from it, or every token at once).
    """

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="device"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "device_id"], name="token_user_device")]

    def __str__(self) -> str:
        return f"token of {self.user_id} on {self.device_id or '(unnamed device)'}"


class Block(models.Model):
    """``blocker`` does not want calls from ``blocked``: their invitations answer as if busy."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once"),
        ]
        # Looked up by the invitee side when someone invites: "which of these blocked me?"
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_by_blocked")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


# Push devices and deliveries (issue 12) are models of this app kept beside the code that uses
# them; importing them here registers them with the app.
from .push.models import PushDelivery, PushDevice  # noqa: E402,F401
