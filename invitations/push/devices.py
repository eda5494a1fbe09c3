"""Push registrations: register (moving a token between users), list, remove.

The REST edge (``api/push_views.py``) parses with ``validation.push_device_fields`` and calls
these; they hold the rules:

- a token (or Web Push endpoint) names one installation, so registering one another user holds
  moves it to the caller: the phone changed hands, and the old owner must not ring on it;
- a device holds one registration per provider, so a new token for it replaces the old one;
- a registration made with an API token hangs off it: revoking that token (logging the device
  out, ``DELETE /api/auth/token/`` or ``/api/auth/tokens/``) removes the registration.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..errors import CallError
from .models import PushDevice


def push_device_snapshot(device: PushDevice) -> dict[str, Any]:
    """API.md's PushDevice."""
    return {
        "id": device.pk,
        "device_id": device.device_id,
        "provider": device.provider,
        "app_id": device.app_id,
        "created_at": device.created_at.isoformat(),
        "last_used_at": device.last_used_at.isoformat() if device.last_used_at else None,
    }


def register(
    *,
    user: User,
    device_id: str,
    provider: str,
    token: str,
    subscription: dict[str, Any],
    app_id: str = "",
    auth_token_digest: str | None = None,
) -> tuple[PushDevice, bool]:
    """Register a push device for the caller; ``created`` is False when this same registration
    (same user, device, provider and token) existed already, which is then refreshed."""
    key = {"user": user, "device_id": device_id, "provider": provider}
    fresh = {"subscription": subscription, "app_id": app_id, "auth_token_id": auth_token_digest}
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _register(key, token, fresh)
        except IntegrityError:
            # Two registrations of one token (or one device) raced; the second try sees the
            # first one's row and moves or refreshes it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _register(key: dict[str, Any], token: str, fresh: dict[str, Any]) -> tuple[PushDevice, bool]:
    """``key``: the user, device and provider; ``fresh``: what a registration (re)writes."""
    fresh = {**fresh, "registered_at": timezone.now()}
    same = PushDevice.objects.filter(**key, token=token).first()
    if same is not None:
        for name, value in fresh.items():
            setattr(same, name, value)
        same.save(update_fields=["subscription", "app_id", "registered_at", "auth_token"])
        return same, False
    # The token elsewhere (another user's, or another device's) and this device's old token.
    PushDevice.objects.filter(provider=key["provider"], token=token).delete()
    PushDevice.objects.filter(**key).delete()
    return PushDevice.objects.create(**key, token=token, **fresh), True


def devices_of(user: User) -> list[PushDevice]:
    return list(PushDevice.objects.filter(user=user))


def remove(*, user: User, device_pk: int) -> None:
    deleted, _ = PushDevice.objects.filter(user=user, pk=device_pk).delete()
    if not deleted:
        raise CallError("not_found", "No such push device.")
