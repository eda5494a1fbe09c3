"""How delivery builds the senders: with no arguments from settings, or with keywords that win."""

from __future__ import annotations

from typing import Any

import pytest

from invitations.push.senders.apns import APNsSender
from invitations.push.senders.base import Outcome, PushMessage, Sender
from invitations.push.senders.fcm import FCMSender
from invitations.push.senders.webpush import WebPushSender

from .fixtures.apns import APNsServer
from .fixtures.messages import message


@pytest.mark.parametrize("cls", [WebPushSender, APNsSender, FCMSender])
async def test_every_sender_builds_from_settings_alone(cls: Any) -> None:
    sender: Sender = cls.from_settings()
    assert isinstance(sender, cls)
    await sender.close()  # closing a sender that never sent is fine


async def test_keywords_win_over_settings(apns_server: APNsServer, settings: Any) -> None:
    given = {
        name: getattr(settings, f"APNS_{name.upper()}")
        for name in ("key_file", "key_id", "team_id", "topic", "base_url", "ca_bundle")
    }
    settings.APNS_KEY_FILE = settings.APNS_KEY_ID = settings.APNS_BASE_URL = ""
    sender = APNsSender(**given)
    try:
        result = await sender.send(message("apns_voip", token="ab" * 32))
    finally:
        await sender.close()
    assert result.outcome == Outcome.SENT, result


async def test_without_settings_every_sender_answers_config_error(settings: Any) -> None:
    for name in ("WEBPUSH_VAPID_PRIVATE_KEY", "APNS_KEY_FILE", "FCM_SERVICE_ACCOUNT_FILE"):
        setattr(settings, name, "")
    pushes: list[tuple[Sender, PushMessage]] = [
        (WebPushSender(), message("webpush", subscription={"endpoint": "https://x.test/p/1"})),
        (APNsSender(), message("apns", token="ab" * 32)),
        (FCMSender(), message("fcm", token="t")),
    ]
    for sender, push in pushes:
        result = await sender.send(push)
        await sender.close()
        assert result.outcome == Outcome.CONFIG_ERROR, (type(sender).__name__, result)
