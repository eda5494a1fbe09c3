"""The admin: find calls, read a call's participants and timeline, force-end through the service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from invitations.models import Call, CallEvent
from tests.callflow import db_state, ok, start_call

pytestmark = pytest.mark.django_db(transaction=True)  # force end publishes on commit

CHANGELIST = "/admin/invitations/call/"


@pytest.fixture
def calls(client_for: Any) -> dict[str, str]:
    """A small history: one call per state, type and end reason that the filters must tell apart."""
    made = {}
    made["ringing_audio"] = start_call(client_for("alice"), "bob", type="audio")["id"]
    c = start_call(client_for("carol"), "dave")["id"]
    ok(client_for("dave"), c, "accept")
    made["ongoing_video"] = c
    c = start_call(client_for("erin"), "frank")["id"]
    ok(client_for("erin"), c, "cancel")
    made["cancelled"] = c
    c = start_call(client_for("grace"), "heidi", type="audio")["id"]
    ok(client_for("heidi"), c, "reject")
    made["unanswered_audio"] = c
    c = start_call(client_for("ivan"), "judy")["id"]
    ok(client_for("judy"), c, "accept")
    ok(client_for("judy"), c, "end")
    made["ended"] = c
    # one call from last month, for the date filter
    c = start_call(client_for("ivan"), "mallory")["id"]
    ok(client_for("ivan"), c, "cancel")
    Call.objects.filter(pk=c).update(created_at=timezone.now() - timedelta(days=40))
    made["old"] = c
    return made


def listed(admin_client: Client, query: str = "") -> set[str]:
    res = admin_client.get(CHANGELIST + query)
    assert res.status_code == 200
    return {str(c.pk) for c in res.context["cl"].result_list}


def names(calls: dict[str, str], *keys: str) -> set[str]:
    return {calls[k] for k in keys}


def test_the_changelist_shows_every_call(admin_client: Client, calls: dict[str, str]) -> None:
    assert listed(admin_client) == set(calls.values())


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?state__exact=ringing", ["ringing_audio"]),
        ("?state__exact=ongoing", ["ongoing_video"]),
        ("?state__exact=ended", ["cancelled", "unanswered_audio", "ended", "old"]),
        ("?type__exact=audio", ["ringing_audio", "unanswered_audio"]),
        ("?end_reason__exact=cancelled", ["cancelled", "old"]),
        ("?end_reason__exact=unanswered", ["unanswered_audio"]),
        ("?end_reason__exact=ended", ["ended"]),
        ("?end_reason__isnull=True", ["ringing_audio", "ongoing_video"]),
        ("?state__exact=ended&type__exact=audio", ["unanswered_audio"]),
    ],
)
def test_the_changelist_filters_by_state_type_and_end_reason(
    admin_client: Client, calls: dict[str, str], query: str, expected: list[str]
) -> None:
    assert listed(admin_client, query) == names(calls, *expected)


def test_the_changelist_filters_by_date(admin_client: Client, calls: dict[str, str]) -> None:
    # follow the filter's own "Past 7 days" link, as an operator would
    cl = admin_client.get(CHANGELIST).context["cl"]
    [date_filter] = [f for f in cl.filter_specs if f.field_path == "created_at"]
    [week] = [c for c in date_filter.choices(cl) if c["display"] == "Past 7 days"]
    assert listed(admin_client, week["query_string"]) == set(calls.values()) - {calls["old"]}
    old = timezone.now() - timedelta(days=40)
    assert listed(admin_client, f"?created_at__year={old.year}&created_at__month={old.month}") == {
        calls["old"]
    }


@pytest.mark.parametrize(
    "term, expected",
    [
        ("alice", ["ringing_audio"]),  # the inviter
        ("dave", ["ongoing_video"]),  # an invitee
        ("IVAN", ["ended", "old"]),  # case-insensitive, no duplicate rows
        ("nobody", []),
    ],
)
def test_the_changelist_searches_by_username(
    admin_client: Client, calls: dict[str, str], term: str, expected: list[str]
) -> None:
    res = admin_client.get(CHANGELIST, {"q": term})
    rows = [str(c.pk) for c in res.context["cl"].result_list]
    assert sorted(rows) == sorted(names(calls, *expected))  # sorted lists: duplicates would show


def test_the_change_page_shows_participants_and_the_timeline_read_only(
    admin_client: Client, calls: dict[str, str]
) -> None:
    cid = calls["ended"]
    res = admin_client.get(f"{CHANGELIST}{cid}/change/")
    assert res.status_code == 200
    page = res.content.decode()
    assert "Timeline" in page
    for username in ("ivan", "judy"):
        assert username in page
    formsets = {f.formset.prefix: f for f in res.context["inline_admin_formsets"]}
    participants = formsets["participants"]
    timeline = formsets["events"]
    assert len(participants.formset.forms) == 2
    assert [f.instance.kind for f in timeline.formset.forms] == [
        "created",
        "invited",
        "accepted",
        "ended",
    ]
    # read-only: no input for any field, no add or delete
    for inline in (participants, timeline):
        assert not inline.has_add_permission and not inline.has_delete_permission
        assert not inline.has_change_permission
    assert 'name="participants-0-state"' not in page
    assert 'name="events-0-kind"' not in page
    assert 'name="state"' not in page
    # and no buttons that would only answer 403: no Save, no Delete
    assert 'name="_save"' not in page
    assert "/delete/" not in page


def test_a_call_cannot_be_deleted_in_the_admin(admin_client: Client, calls: dict[str, str]) -> None:
    cid = calls["ringing_audio"]
    before = db_state()
    res = admin_client.post(f"{CHANGELIST}{cid}/delete/", {"post": "yes"})
    assert res.status_code == 403
    assert db_state() == before


def test_the_change_page_cannot_be_saved(admin_client: Client, calls: dict[str, str]) -> None:
    cid = calls["ringing_audio"]
    before = db_state()
    res = admin_client.post(f"{CHANGELIST}{cid}/change/", {"state": "ended", "type": "video"})
    assert res.status_code == 403
    assert db_state() == before


def test_calls_cannot_be_added_in_the_admin(admin_client: Client) -> None:
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_timeline_cannot_be_edited(admin_client: Client, calls: dict[str, str]) -> None:
    event = CallEvent.objects.first()
    assert admin_client.get(f"/admin/invitations/callevent/{event.pk}/change/").status_code == 200
    before = db_state()
    admin_client.post(f"/admin/invitations/callevent/{event.pk}/change/", {"kind": "ended"})
    admin_client.post(f"/admin/invitations/callevent/{event.pk}/delete/", {"post": "yes"})
    assert db_state() == before


def test_force_end_ends_live_calls_through_the_state_machine(
    admin_client: Client, admin_user: Any, calls: dict[str, str]
) -> None:
    chosen = [calls["ringing_audio"], calls["ongoing_video"], calls["cancelled"]]
    res = admin_client.post(
        CHANGELIST, {"action": "force_end", "_selected_action": chosen}, follow=True
    )
    assert res.status_code == 200
    assert "Ended 2 call(s); 1 had already ended." in res.content.decode()

    ringing = Call.objects.get(pk=calls["ringing_audio"])
    assert (ringing.state, ringing.end_reason) == ("ended", "ended")
    assert ringing.ended_at is not None
    # the service did it: the one still ringing was cancelled, and the timeline says who
    assert ringing.participants.get(user__username="bob").state == "cancelled"
    ended = CallEvent.objects.get(call=ringing, kind="ended")
    assert ended.actor == admin_user
    assert CallEvent.objects.filter(call=ringing, kind="cancelled", actor=admin_user).count() == 1
    ongoing = Call.objects.get(pk=calls["ongoing_video"])
    assert (ongoing.state, ongoing.end_reason) == ("ended", "ended")
    # the call that had already ended did not change
    cancelled = Call.objects.get(pk=calls["cancelled"])
    assert cancelled.end_reason == "cancelled"
    assert CallEvent.objects.filter(call=cancelled, kind="ended").count() == 1


def test_ordinary_users_cannot_use_the_admin(users: dict[str, Any], calls: dict[str, str]) -> None:
    from tests.conftest import PASSWORD

    browser = Client()
    assert browser.login(username="alice", password=PASSWORD)
    res = browser.get(CHANGELIST)
    assert res.status_code == 302 and "/admin/login/" in res["Location"]
