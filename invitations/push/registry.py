"""Which providers this server can push through, and one sender for each.

A provider is configured when its settings are (callsite/settings/push.py); with
``PUSH_WEBHOOK_URL`` and ``PUSH_WEBHOOK_SECRET`` set, the webhook gateway takes apns, apns_voip and
fcm instead of Apple and Google. Each sender reads its own settings (``from_settings()``);
apns and apns_voip share one instance.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from .models import Provider
from .senders.apns import APNsSender
from .senders.base import Sender
from .senders.fcm import FCMSender
from .senders.webpush import WebPushSender

logger = logging.getLogger(__name__)

_BUILDERS: dict[str, Callable[[], Sender]] = {
    Provider.WEBPUSH: WebPushSender.from_settings,
    Provider.APNS: APNsSender.from_settings,
    Provider.APNS_VOIP: APNsSender.from_settings,  # the same builder: one shared instance
    Provider.FCM: FCMSender.from_settings,
}

# Settings that must all be set for a provider to be on.
_REQUIRED = {
    Provider.WEBPUSH: (
        "WEBPUSH_VAPID_PRIVATE_KEY",
        "WEBPUSH_VAPID_PUBLIC_KEY",
        "WEBPUSH_VAPID_SUBJECT",  # push services refuse a VAPID token without one
    ),
    Provider.APNS: ("APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"),
    Provider.APNS_VOIP: ("APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"),
    Provider.FCM: ("FCM_SERVICE_ACCOUNT_FILE",),
}

NATIVE = (Provider.APNS, Provider.APNS_VOIP, Provider.FCM)


def webhook_enabled() -> bool:
    return bool(settings.PUSH_WEBHOOK_URL and settings.PUSH_WEBHOOK_SECRET)


@functools.cache
def configured_providers() -> tuple[str, ...]:
    """The providers this server pushes through, in API.md's order. Read from settings once."""
    enabled = []
    for provider in Provider.values:
        if provider in NATIVE and webhook_enabled():
            enabled.append(provider)
        elif all(getattr(settings, name, "") for name in _REQUIRED[Provider(provider)]):
            enabled.append(provider)
    return tuple(enabled)


def enabled() -> bool:
    return bool(configured_providers())


def build_senders() -> dict[str, Sender]:
    """One sender per configured provider (apns and apns_voip share theirs); the caller closes
    them (``close_all``)."""
    senders: dict[str, Sender] = {}
    providers = configured_providers()
    if webhook_enabled():
        from .senders.webhook import WebhookSender

        gateway = WebhookSender(
            url=settings.PUSH_WEBHOOK_URL,
            secret=settings.PUSH_WEBHOOK_SECRET,
            ca_bundle=settings.PUSH_WEBHOOK_CA_BUNDLE,
        )
        for native in NATIVE:
            senders[native] = gateway
    built: dict[Callable[[], Sender], Sender] = {}
    for provider in providers:
        if provider not in senders:
            build = _BUILDERS[provider]
            if build not in built:
                built[build] = build()
            senders[provider] = built[build]
    return senders


async def close_all(senders: dict[str, Sender]) -> None:
    for sender in {id(s): s for s in senders.values()}.values():
        try:
            await sender.close()
        except Exception:  # closing is best effort; the process may be stopping
            logger.exception("push: closing a sender failed")


def vapid_public_key() -> str | None:
    return settings.WEBPUSH_VAPID_PUBLIC_KEY if Provider.WEBPUSH in configured_providers() else None


def _forget(**_: Any) -> None:
    configured_providers.cache_clear()


# Tests change settings (override_settings); the cached answer must follow.
setting_changed.connect(_forget)
