"""Presence: online while any device is connected, pushed live, right across server processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from invitations.models import Call, DeviceConnection
from invitations.realtime.devices import sweep
from tests.realtime.support import Device, Devices, invite

pytestmark = pytest.mark.django_db(transaction=True)


def online_in_api(client: Any, username: str) -> bool:
    res = client.get("/api/users/", {"search": username})
    assert res.status_code == 200, res.content
    return next(u["online"] for u in res.json()["results"] if u["username"] == username)


async def presence(device: Device, timeout: float = 3) -> dict[str, Any]:
    return await device.next("presence.changed", skip=(), timeout=timeout)


async def test_presence_follows_the_first_and_the_last_device(
    users: dict[str, Any], devices: Devices, client_for: Any
) -> None:
    api = await database_sync_to_async(client_for)("alice")
    check = database_sync_to_async(online_in_api)
    alice = await devices(users["alice"])
    assert await presence(alice) == {"type": "presence.changed", "user": "alice", "online": True}
    assert not await check(api, "bob")

    phone = await devices(users["bob"], "phone")
    assert await presence(alice) == {"type": "presence.changed", "user": "bob", "online": True}
    assert await check(api, "bob")

    laptop = await devices(users["bob"], "laptop")
    await phone.close()
    await alice.nothing(0.3, skip=())  # still online through the laptop: no event
    assert await check(api, "bob")

    await laptop.close()
    assert await presence(alice) == {"type": "presence.changed", "user": "bob", "online": False}
    assert not await check(api, "bob")


async def test_me_shows_myself_online_while_connected(
    users: dict[str, Any], devices: Devices, client_for: Any
) -> None:
    api = await database_sync_to_async(client_for)("bob")
    me = database_sync_to_async(lambda: api.get("/api/me/").json()["online"])
    assert await me() is False
    await devices(users["bob"])
    assert await me() is True


def dead_process_row(user: Any, seconds_ago: float) -> None:
    DeviceConnection.objects.create(
        user=user,
        device_id="phone",
        channel_name=f"specific.dead!{user.pk}",
        server_id="killed-server",
        last_seen=timezone.now() - timedelta(seconds=seconds_ago),
    )


async def test_a_killed_process_does_not_leave_its_users_online(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {
        **settings.CALLSITE,
        "PRESENCE_HEARTBEAT": 0.2,
        "PRESENCE_TTL": 1.0,
        "CALLER_OFFLINE_GRACE": 30,
    }
    api = await database_sync_to_async(client_for)("alice")
    # Given bob's socket lived on a server process that was killed without closing it, right
    # after bob started a call
    await database_sync_to_async(dead_process_row)(users["bob"], 0)
    call = (await invite(inviter=users["bob"], invitees=["carol"])).call
    assert await database_sync_to_async(online_in_api)(api, "bob")
    # When the surviving process (alice's) heartbeats past the TTL
    alice = await devices(users["alice"])
    await presence(alice)  # alice herself
    # Then bob goes offline, live and in the API, and his ringing call starts its grace period
    assert await presence(alice, timeout=4) == {
        "type": "presence.changed",
        "user": "bob",
        "online": False,
    }
    assert not await database_sync_to_async(online_in_api)(api, "bob")
    c = await database_sync_to_async(Call.objects.get)(pk=call["id"])
    assert c.inviter_offline_deadline is not None
    rows = DeviceConnection.objects.filter(user=users["bob"])
    assert not await database_sync_to_async(rows.exists)()


async def test_the_heartbeat_keeps_live_devices_online_past_the_ttl(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_HEARTBEAT": 0.2, "PRESENCE_TTL": 0.6}
    api = await database_sync_to_async(client_for)("alice")
    bob = await devices(users["bob"])
    assert (await presence(bob))["online"] is True
    await asyncio.sleep(1.5)
    assert await database_sync_to_async(online_in_api)(api, "bob")
    await bob.nothing(0.1, skip=())  # and no offline flap on the way


async def test_a_device_swept_by_mistake_comes_back(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_HEARTBEAT": 0.2, "PRESENCE_TTL": 5}
    api = await database_sync_to_async(client_for)("alice")
    bob = await devices(users["bob"])
    # Another process swept bob's row, e.g. because this one stalled longer than the TTL.
    await database_sync_to_async(DeviceConnection.objects.filter(user=users["bob"]).delete)()
    await asyncio.sleep(0.6)
    assert await database_sync_to_async(online_in_api)(api, "bob")
    await bob.ping()


@pytest.mark.parametrize("refresh", [0.3, None])
async def test_a_socket_open_longer_than_group_expiry_keeps_receiving(
    users: dict[str, Any], devices: Devices, settings: Any, refresh: float | None
) -> None:
    """The channel layer forgets group members after group_expiry; the heartbeat re-joins them.

    The second case switches the re-join off, to show the first one proves something.
    """
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"group_expiry": 2},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    settings.CALLSITE = {
        **settings.CALLSITE,
        "PRESENCE_HEARTBEAT": 0.1,
        "GROUP_REFRESH_SECONDS": refresh or 3600,
    }
    bob = await devices(users["bob"])
    await asyncio.sleep(3.5)
    await invite(inviter=users["alice"], invitees=["bob"])
    if refresh:
        assert (await bob.next("call.invitation_received"))["inviter"] == "alice"
    else:
        await bob.nothing(0.5)


def test_sweep_only_takes_stale_rows(users: dict[str, Any], settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_TTL": 10}
    dead_process_row(users["bob"], 60)
    dead_process_row(users["carol"], 1)
    assert sweep() == 1
    assert list(DeviceConnection.objects.values_list("user__username", flat=True)) == ["carol"]


async def test_a_socket_that_opts_out_of_presence_gets_no_presence_events_but_counts_online(
    users: dict[str, Any], devices: Devices, client_for: Any
) -> None:
    # Given carol's phone connected with ?presence=0 and alice subscribed as usual
    phone = await devices(users["carol"], "phone", extra="presence=0")
    alice = await devices(users["alice"])
    # When bob comes online
    await devices(users["bob"])
    # Then alice hears of it, carol's phone does not
    assert (await presence(alice))["user"] in {"alice", "bob"}
    await phone.nothing(0.5, skip=())
    # And carol is still online for everyone else
    api = await database_sync_to_async(client_for)("alice")
    assert await database_sync_to_async(online_in_api)(api, "carol")
    # And her phone still gets calls
    await invite(inviter=users["bob"], invitees=["carol"])
    assert (await phone.next("call.invitation_received"))["inviter"] == "bob"
