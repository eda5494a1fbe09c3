"""A server shutting down releases its device rows (realtime/devices.py ``release_server``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from invitations import services
from invitations.models import DeviceConnection, UserPresence
from invitations.realtime.devices import release_server


def device(user: Any, server: str, name: str) -> None:
    DeviceConnection.objects.create(
        user=user, device_id=name, channel_name=name, server_id=server, last_seen=timezone.now()
    )
    services.mark_user_online(user=user)


@pytest.mark.django_db
def test_only_users_with_no_device_elsewhere_start_their_offline_countdowns(
    users: dict[str, Any],
) -> None:
    device(users["alice"], "leaving", "a1")
    device(users["alice"], "leaving", "a2")
    device(users["bob"], "leaving", "b1")
    device(users["bob"], "staying", "b2")
    assert release_server(deadline=time.monotonic() + 30, server_id="leaving") == (2, 1)
    assert list(DeviceConnection.objects.values_list("channel_name", flat=True)) == ["b2"]
    presence = {p.user.username: p for p in UserPresence.objects.select_related("user")}
    assert presence["alice"].online and presence["alice"].offline_deadline is not None  # grace
    assert presence["bob"].online and presence["bob"].offline_deadline is None


@pytest.mark.django_db
def test_rows_it_has_no_time_for_stay_for_the_sweep(users: dict[str, Any]) -> None:
    device(users["alice"], "leaving", "a1")
    assert release_server(deadline=time.monotonic() - 1, server_id="leaving") == (0, 0)
    assert DeviceConnection.objects.count() == 1
    assert UserPresence.objects.get(user=users["alice"]).offline_deadline is None
