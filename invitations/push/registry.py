"""Which providers this server can push through, and one sender for each.

A provider is configured when its settings are (callsite/settings/push.py) and its
sender's module is importable; with ``PUSH_WEBHOOK_URL`` and ``PUSH_WEBHOOK_SECRET`` set, the
webhook gateway takes apns, apns_voip and fcm instead of Apple and Google.

Provider senders are imported lazily, by module and class name, so a deployment (or a branch)
without one simply does not offer that provider:

- ``invitations.push.senders.webpush.WebPushSender``
- ``invitations.push.senders.apns.APNsSender`` (apns and apns_voip share one instance)
- ``invitations.push.senders.fcm.FCMSender``

Each is built with ``Class.from_settings()`` when the class has it, else with the keyword
arguments of ``_KWARGS`` below, read from settings.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from .models import Provider
from .senders.base import Sender

logger = logging.getLogger(__name__)

_CLASSES = {
    Provider.WEBPUSH: ("invitations.push.senders.webpush", "WebPushSender"),
    Provider.APNS: ("invitations.push.senders.apns", "APNsSender"),
    Provider.APNS_VOIP: ("invitations.push.senders.apns", "APNsSender"),
    Provider.FCM: ("invitations.push.senders.fcm", "FCMSender"),
}

_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    Provider.WEBPUSH: lambda: {
        "vapid_private_key": settings.WEBPUSH_VAPID_PRIVATE_KEY,
        "vapid_public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY,
        "vapid_subject": settings.WEBPUSH_VAPID_SUBJECT,
        "ca_bundle": settings.WEBPUSH_CA_BUNDLE,
    },
    Provider.APNS: lambda: {
        "key_file": settings.APNS_KEY_FILE,
        "key_id": settings.APNS_KEY_ID,
        "team_id": settings.APNS_TEAM_ID,
        "topic": settings.APNS_TOPIC,
        "base_url": settings.APNS_BASE_URL,
        "ca_bundle": settings.APNS_CA_BUNDLE,
    },
    Provider.FCM: lambda: {
        "service_account_file": settings.FCM_SERVICE_ACCOUNT_FILE,
        "base_url": settings.FCM_BASE_URL,
        "ca_bundle": settings.FCM_CA_BUNDLE,
    },
}
_KWARGS[Provider.APNS_VOIP] = _KWARGS[Provider.APNS]

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


def _sender_class(provider: str) -> type | None:
    module_name, class_name = _CLASSES[Provider(provider)]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Only the module itself missing means "not offered"; a broken one is a bug to see.
        if exc.name != module_name:
            raise
        return None
    cls: type | None = getattr(module, class_name, None)
    return cls


@functools.cache
def configured_providers() -> tuple[str, ...]:
    """The providers this server pushes through, in API.md's order. Read from settings once."""
    enabled = []
    for provider in Provider.values:
        if provider in NATIVE and webhook_enabled():
            enabled.append(provider)
        elif all(getattr(settings, name, "") for name in _REQUIRED[Provider(provider)]):
            if _sender_class(provider) is not None:
                enabled.append(provider)
            else:
                logger.warning("push: %s is configured but its sender is not installed", provider)
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
    by_class: dict[type, Sender] = {}
    for provider in providers:
        if provider in senders:
            continue
        cls = _sender_class(provider)
        if cls is None:
            continue
        if cls not in by_class:
            factory = getattr(cls, "from_settings", None)
            by_class[cls] = factory() if factory is not None else cls(**_KWARGS[provider]())
        senders[provider] = by_class[cls]
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
