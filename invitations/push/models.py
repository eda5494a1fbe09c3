"""What the database remembers about push: the devices, and every push owed to one of them.

Both live in the ``invitations`` app (imported by ``invitations/models.py``), so their
migrations sit with the calls they point at.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Provider(models.TextChoices):
    WEBPUSH = "webpush"
    APNS = "apns"
    APNS_VOIP = "apns_voip"
    FCM = "fcm"


# Providers whose devices give a token (the others, webpush, give a subscription).
TOKEN_PROVIDERS = (Provider.APNS, Provider.APNS_VOIP, Provider.FCM)


class PushDevice(models.Model):
    """One push registration of one device (``device_id``) of a user.

    ``token`` is the provider's token, or for Web Push the subscription's endpoint: either way
    it names one installation, so it is unique per provider and a registration of the same
    token by another user moves the row to them. A device holds one registration per provider.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices"
    )
    device_id = models.CharField(max_length=64)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    token = models.CharField(max_length=1024)
    subscription = models.JSONField(default=dict, blank=True)  # webpush: {"endpoint", "keys"}
    app_id = models.CharField(max_length=200, blank=True, default="")
    # The API token it was registered with: revoking (or replacing) that token logs the device
    # out, and its push registrations go with it. Null for a browser session.
    auth_token = models.ForeignKey(
        "knox.AuthToken", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The last (re-)registration: an APNs 410 older than this does not remove the device.
    registered_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "token"], name="push_token_once"),
            models.UniqueConstraint(
                fields=["user", "device_id", "provider"], name="push_one_per_device_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} push of {self.user} on {self.device_id}"


class PushKind(models.TextChoices):
    RING = "ring"  # call.ring
    STOP = "stop"  # call.ring_stopped


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # due at next_attempt_at (a first try, a retry, or a deferred ring)
    SENT = "sent"  # the provider accepted it
    DEAD = "dead"  # the provider says the token is gone; the device was removed
    FAILED = "failed"  # refused for good, retries ran out before the deadline, or bad config
    EXPIRED = "expired"  # its deadline passed before it could go: never delivered late
    CANCELLED = "cancelled"  # no longer wanted: the ring stopped (or was acked) before its turn


class PushDelivery(models.Model):
    """One push owed to one device: the delivery worker's outbox.

    Written in the call's transaction, so a ring exists exactly when the invitation does; the
    worker picks rows whose ``next_attempt_at`` has come (an index of pending rows keeps that
    cheap) and never sends one past ``not_after``.
    """

    push_device = models.ForeignKey(
        PushDevice, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    call = models.ForeignKey("invitations.Call", on_delete=models.CASCADE, related_name="pushes")
    participant = models.ForeignKey(
        "invitations.Participant", on_delete=models.CASCADE, related_name="pushes"
    )
    # Copied from the device: the row still says where it went after the device is removed.
    provider = models.CharField(max_length=16, choices=Provider.choices)
    device_id = models.CharField(max_length=64, blank=True, default="")
    kind = models.CharField(max_length=8, choices=PushKind.choices)
    reason = models.CharField(max_length=32, blank=True, default="")  # a stop's reason
    # A deferred ring (the device had a socket): sent only if no socket acked meanwhile.
    unless_acked = models.BooleanField(default=False)
    payload = models.JSONField(default=dict)
    not_after = models.DateTimeField()  # rings: the invitation's deadline
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_detail = models.CharField(max_length=200, blank=True, default="")
    latency_ms = models.FloatField(null=True, blank=True)  # of the last attempt
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "push deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="push_delivery_due",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["participant", "kind"], name="push_delivery_participant"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.provider} {self.device_id}: {self.state}"
