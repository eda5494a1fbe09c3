"""Presence (API.md "Presence"): a socket hears about the users it subscribed to, no one else.

Real parts: the /ws/ stack, the database, the in-memory channel layer of the embedded default,
and the real timer worker where the offline grace must end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from invitations.models import Call, DeviceConnection, UserPresence
from invitations.presence import PRESENCE_GROUP
from invitations.realtime.devices import sweep
from invitations.realtime.presence import hub_for
from tests.realtime.support import Device, Devices, invite, timer_worker

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 1.0  # PRESENCE_GRACE in the specs that wait for it


@pytest.fixture
def short_grace(settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_GRACE": GRACE}


def online_in_api(client: Any, username: str) -> bool:
    res = client.get("/api/users/", {"search": username})
    assert res.status_code == 200, res.content
    return next(u["online"] for u in res.json()["results"] if u["username"] == username)


async def api_says_online(client: Any, username: str) -> bool:
    return await database_sync_to_async(online_in_api)(client, username)


async def subscribe(device: Device, users: list[str]) -> dict[str, Any]:
    """Send presence.subscribe; return its answer (the snapshot, or an error)."""
    await device.send({"type": "presence.subscribe", "users": users})
    return await device.next(skip=())


async def changed(device: Device, timeout: float = 3) -> dict[str, Any]:
    return await device.next("presence.changed", skip=(), timeout=timeout)


def on(user: str, online: bool) -> dict[str, Any]:
    return {"type": "presence.changed", "user": user, "online": online}


async def test_the_snapshot_tells_the_state_of_each_subscribed_user_that_exists(
    users: dict[str, Any], devices: Devices
) -> None:
    await devices(users["bob"])
    alice = await devices(users["alice"])
    snapshot = await subscribe(alice, ["carol", "bob", "nobody-by-that-name", "bob"])
    assert snapshot == {
        "type": "presence.snapshot",
        "users": [{"user": "carol", "online": False}, {"user": "bob", "online": True}],
    }
    await alice.nothing(0.3, skip=())  # one answer, nothing else


async def test_only_the_changes_of_subscribed_users_arrive(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    erin = await devices(users["erin"])
    dave = await devices(users["dave"])  # subscribes to nobody
    await subscribe(alice, ["bob"])
    await subscribe(erin, ["carol"])
    await devices(users["bob"])
    assert await changed(alice) == on("bob", True)
    await erin.nothing(0.3, skip=())
    await dave.nothing(0.1, skip=())
    await devices(users["carol"])
    assert await changed(erin) == on("carol", True)
    await alice.nothing(0.3, skip=())
    await dave.nothing(0.1, skip=())


async def test_a_subscribe_replaces_the_previous_set(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    await subscribe(alice, ["bob", "carol"])
    snapshot = await subscribe(alice, ["carol", "dave"])
    assert snapshot["users"] == [
        {"user": "carol", "online": False},
        {"user": "dave", "online": False},
    ]
    await devices(users["bob"])  # no longer watched
    await devices(users["dave"])
    assert await changed(alice) == on("dave", True)
    await alice.nothing(0.3, skip=())


async def test_an_empty_list_unsubscribes(users: dict[str, Any], devices: Devices) -> None:
    alice = await devices(users["alice"])
    await subscribe(alice, ["bob"])
    assert await subscribe(alice, []) == {"type": "presence.snapshot", "users": []}
    await devices(users["bob"])
    await alice.nothing(0.4, skip=())


async def test_at_most_500_users_and_a_refused_subscribe_keeps_the_old_set(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    many = ["bob"] + [f"nobody-{i}" for i in range(499)]
    assert (await subscribe(alice, many))["users"] == [{"user": "bob", "online": False}]
    refused = await subscribe(alice, ["carol"] + [f"other-{i}" for i in range(500)])
    assert refused["type"] == "error", refused
    assert refused["error"]["code"] == "validation_error"
    assert refused["request_type"] == "presence.subscribe"
    await devices(users["carol"])  # the refused set never took effect
    await devices(users["bob"])  # the old one still holds
    assert await changed(alice) == on("bob", True)
    await alice.nothing(0.3, skip=())


@pytest.mark.parametrize(
    "message",
    [
        {"type": "presence.subscribe"},
        {"type": "presence.subscribe", "users": "bob"},
        {"type": "presence.subscribe", "users": {"bob": True}},
        {"type": "presence.subscribe", "users": ["bob", 7]},
        {"type": "presence.subscribe", "users": [None]},
    ],
)
async def test_bad_input_is_an_error_and_the_socket_stays_open(
    users: dict[str, Any], devices: Devices, message: dict[str, Any]
) -> None:
    alice = await devices(users["alice"])
    await alice.send(message)
    answer = await alice.next(skip=())
    assert answer["type"] == "error"
    assert answer["error"]["code"] == "validation_error"
    assert "users" in answer["error"]["details"]
    await alice.ping()


async def test_a_reload_within_the_grace_tells_subscribers_nothing_and_the_end_of_it_once(
    users: dict[str, Any], devices: Devices, client_for: Any, short_grace: None
) -> None:
    api = await database_sync_to_async(client_for)("alice")
    async with timer_worker():
        alice = await devices(users["alice"])
        await subscribe(alice, ["bob"])
        page = await devices(users["bob"])
        assert await changed(alice) == on("bob", True)
        # A reload: the page's socket closes and a new one opens at once.
        await page.close()
        page = await devices(users["bob"])
        await alice.nothing(GRACE + 0.7, skip=())
        assert await api_says_online(api, "bob")
        # Gone for good: still online during the grace, then exactly one offline.
        await page.close()
        await asyncio.sleep(GRACE / 3)
        assert await api_says_online(api, "bob")
        assert await changed(alice, timeout=GRACE + 3) == on("bob", False)
        assert not await api_says_online(api, "bob")
        await alice.nothing(GRACE, skip=())


async def test_rest_answers_online_like_the_events(
    users: dict[str, Any], devices: Devices, client_for: Any, short_grace: None
) -> None:
    api = await database_sync_to_async(client_for)("bob")
    me = database_sync_to_async(lambda: api.get("/api/me/").json()["online"])
    assert await me() is False
    async with timer_worker():
        phone = await devices(users["bob"], "phone")
        laptop = await devices(users["bob"], "laptop")
        assert await me() is True
        await phone.close()
        await asyncio.sleep(GRACE + 0.5)
        assert await me() is True  # the laptop is still there
        await laptop.close()
        assert await me() is True  # within the grace
        for _ in range(40):
            if not await me():
                break
            await asyncio.sleep(0.1)
        assert await me() is False


async def test_a_grace_left_by_a_stopped_server_ends_when_a_timer_worker_starts(
    users: dict[str, Any], devices: Devices
) -> None:
    # Given bob's last socket closed just before every process stopped: his grace is a row
    await database_sync_to_async(UserPresence.objects.create)(
        user=users["bob"], online=True, offline_deadline=timezone.now() - timedelta(seconds=1)
    )
    alice = await devices(users["alice"])
    assert (await subscribe(alice, ["bob"]))["users"] == [{"user": "bob", "online": True}]
    # When a timer worker starts, it finds the deadline and settles it
    async with timer_worker():
        assert await changed(alice) == on("bob", False)


async def test_a_change_costs_one_layer_message_per_process_whatever_the_watchers(
    users: dict[str, Any], devices: Devices, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = get_channel_layer()
    presence_sends: Counter[str] = Counter()
    real_send, real_group_send = InMemoryChannelLayer.send, layer.group_send

    # On the base class: the layer's group_send puts messages into queues through it.
    async def counting_send(self: Any, channel: str, message: dict[str, Any]) -> None:
        if message.get("type") == "presence.changed":
            presence_sends[channel] += 1
        await real_send(self, channel, message)

    async def counting_group_send(group: str, message: dict[str, Any]) -> None:
        if message.get("type") == "presence.changed":
            presence_sends[f"group:{group}"] += 1
        await real_group_send(group, message)

    monkeypatch.setattr(InMemoryChannelLayer, "send", counting_send)
    layer.group_send = counting_group_send
    watchers = [
        await devices(users[name], f"tab-{i}") for name in ("alice", "carol") for i in range(8)
    ]
    for w in watchers:
        await subscribe(w, ["bob", "dave"])
    hub = hub_for(layer)
    presence_sends.clear()  # the watchers' own coming online
    before = hub.received
    await devices(users["bob"])
    for w in watchers:
        assert await changed(w) == on("bob", True)
    await asyncio.sleep(0.1)
    # One publication, one message into this process' one channel, 16 frames.
    assert presence_sends == Counter({f"group:{PRESENCE_GROUP}": 1, hub.channel: 1})
    assert hub.received - before == 1
    for w in watchers:
        await w.nothing(0.05, skip=())


async def test_a_socket_that_subscribes_to_nobody_gets_no_presence_but_counts_online(
    users: dict[str, Any], devices: Devices, client_for: Any
) -> None:
    phone = await devices(users["carol"], "phone")
    alice = await devices(users["alice"])
    await subscribe(alice, ["bob"])
    await devices(users["bob"])
    assert await changed(alice) == on("bob", True)
    await phone.nothing(0.3, skip=())
    api = await database_sync_to_async(client_for)("alice")
    assert await api_says_online(api, "carol")
    await invite(inviter=users["bob"], invitees=["carol"])
    assert (await phone.next("call.invitation_received", skip=()))["inviter"] == "bob"


async def test_presence_follows_the_first_and_the_last_device(
    users: dict[str, Any], devices: Devices, short_grace: None
) -> None:
    async with timer_worker():
        alice = await devices(users["alice"])
        await subscribe(alice, ["bob"])
        phone = await devices(users["bob"], "phone")
        assert await changed(alice) == on("bob", True)
        laptop = await devices(users["bob"], "laptop")
        await phone.close()
        await alice.nothing(GRACE + 0.5, skip=())  # still online through the laptop
        await laptop.close()
        assert await changed(alice, timeout=GRACE + 3) == on("bob", False)


def dead_process_row(user: Any, seconds_ago: float) -> None:
    """A socket of ``user`` held by a server process that was killed without closing it."""
    DeviceConnection.objects.create(
        user=user,
        device_id="phone",
        channel_name=f"specific.dead!{user.pk}",
        server_id="killed-server",
        last_seen=timezone.now() - timedelta(seconds=seconds_ago),
    )
    UserPresence.objects.update_or_create(user=user, defaults={"online": True})


async def test_a_killed_process_does_not_leave_its_users_online(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {
        **settings.CALLSITE,
        "PRESENCE_HEARTBEAT": 0.2,
        "PRESENCE_TTL": 1.0,
        "PRESENCE_GRACE": 0.5,
        "CALLER_OFFLINE_GRACE": 30,
    }
    api = await database_sync_to_async(client_for)("alice")
    # Given bob's socket lived on a server process that was killed without closing it, right
    # after bob started a call
    await database_sync_to_async(dead_process_row)(users["bob"], 0)
    call = (await invite(inviter=users["bob"], invitees=["carol"])).call
    assert await api_says_online(api, "bob")
    async with timer_worker():
        # When the surviving process (alice's) heartbeats past the TTL, and the grace passes
        alice = await devices(users["alice"])
        assert (await subscribe(alice, ["bob"]))["users"] == [{"user": "bob", "online": True}]
        # Then bob goes offline, live and in the API, and his ringing call starts its grace
        assert await changed(alice, timeout=5) == on("bob", False)
    assert not await api_says_online(api, "bob")
    c = await database_sync_to_async(Call.objects.get)(pk=call["id"])
    assert c.inviter_offline_deadline is not None
    rows = DeviceConnection.objects.filter(user=users["bob"])
    assert not await database_sync_to_async(rows.exists)()


async def test_the_heartbeat_keeps_live_devices_online_past_the_ttl(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {
        **settings.CALLSITE,
        "PRESENCE_HEARTBEAT": 0.2,
        "PRESENCE_TTL": 0.6,
        "PRESENCE_GRACE": 0.2,
    }
    api = await database_sync_to_async(client_for)("alice")
    async with timer_worker():
        alice = await devices(users["alice"])
        await subscribe(alice, ["bob"])
        await devices(users["bob"])
        assert await changed(alice) == on("bob", True)
        await asyncio.sleep(1.5)
        assert await api_says_online(api, "bob")
        await alice.nothing(0.1, skip=())  # and no offline flap on the way


async def test_a_device_swept_by_mistake_comes_back(
    users: dict[str, Any], devices: Devices, client_for: Any, settings: Any
) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_HEARTBEAT": 0.2, "PRESENCE_TTL": 5}
    api = await database_sync_to_async(client_for)("alice")
    bob = await devices(users["bob"])
    # Another process swept bob's row, e.g. because this one stalled longer than the TTL.
    await database_sync_to_async(DeviceConnection.objects.filter(user=users["bob"]).delete)()
    await asyncio.sleep(0.6)
    assert await database_sync_to_async(DeviceConnection.objects.filter(user=users["bob"]).exists)()
    assert await api_says_online(api, "bob")
    await bob.ping()


@pytest.mark.parametrize("refresh", [0.3, None])
async def test_a_socket_open_longer_than_group_expiry_keeps_receiving(
    users: dict[str, Any], devices: Devices, settings: Any, refresh: float | None
) -> None:
    """The channel layer forgets group members after group_expiry; the heartbeat re-joins the
    sockets' groups, and the presence hub its own. The second case switches the re-join off, to
    show the first one proves something.
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
    await subscribe(bob, ["carol"])
    await asyncio.sleep(3.5)
    await invite(inviter=users["alice"], invitees=["bob"])
    await devices(users["carol"])
    if refresh:
        assert (await bob.next("call.invitation_received", skip=()))["inviter"] == "alice"
        other = await bob.next("presence.changed", skip=("call.user_state_changed",))
        assert other == on("carol", True)
    else:
        await bob.nothing(0.5, skip=())


def test_sweep_only_takes_stale_rows(users: dict[str, Any], settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "PRESENCE_TTL": 10}
    dead_process_row(users["bob"], 60)
    dead_process_row(users["carol"], 1)
    assert sweep() == 1
    assert list(DeviceConnection.objects.values_list("user__username", flat=True)) == ["carol"]
    # bob's grace has started; nobody is told yet
    bob = UserPresence.objects.get(user=users["bob"])
    assert bob.online and bob.offline_deadline is not None
