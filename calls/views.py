"""Pages of the browser app: home, the call page (waiting + calling), profile, missed calls.

Pages are rendered on the server with what the user may see; the ES modules in static/js/ then
keep them live over /ws/ and act through the REST API, exactly as a mobile client would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from invitations import selectors, validation
from invitations.errors import CallError
from invitations.models import Call, ParticipantState, Role
from invitations.snapshots import display_name

from .models import MissedCallsSeen

UserModel = get_user_model()
RECENT_CALLS = 20
PEOPLE_SHOWN = 200


def signed_in(request: HttpRequest) -> User:
    """The user @login_required let in."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def _seen_at(user: User) -> datetime | None:
    row = MissedCallsSeen.objects.filter(user=user).first()
    return row.seen_at if row else None


def unseen_missed_count(user: User) -> int:
    qs = selectors.calls_for_user(user, missed="true")
    seen = _seen_at(user)
    if seen is not None:
        qs = qs.filter(created_at__gt=seen)
    return qs.count()


def _outcome(call: Call, me: Any, username: str) -> tuple[str, bool]:
    """A short word for how the call went for me, and whether it was missed."""
    if me is None:
        return "", False
    if me.is_missed:
        return "missed", True
    if me.role == Role.INVITEE and me.state == ParticipantState.REJECTED:
        return "declined", False
    if call.state != "ended":
        return "in progress" if call.state == "ongoing" else "ringing", False
    return {
        "ended": "answered",
        "all_left": "answered",
        "cancelled": "cancelled",
        "unanswered": "not answered",
        "caller_offline": "not answered",
    }.get(call.end_reason or "", call.end_reason or ""), False


def _recent_calls(user: User) -> list[dict[str, Any]]:
    username = user.get_username()
    seen = _seen_at(user)
    rows = []
    for call in selectors.calls_for_user(user)[:RECENT_CALLS]:
        parts = list(call.participants.all())
        me = next((p for p in parts if p.user_id == user.pk), None)
        others = [display_name(p.user) for p in parts if p.user_id != user.pk]
        outcome, missed = _outcome(call, me, username)
        rows.append(
            {
                "id": str(call.id),
                "type": call.type,
                "outgoing": call.inviter_id == user.pk,
                "others": others,
                "outcome": outcome,
                "missed": missed,
                "unseen": missed and (seen is None or call.created_at > seen),
                "created_at": call.created_at,
            }
        )
    return rows


def page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render a signed-in page: the header and the incoming-call dialog need these on every page."""
    user = signed_in(request)
    return render(
        request,
        template,
        {
            **context,
            "me_display_name": display_name(user),
            "unseen_missed": unseen_missed_count(user),
            "page_config": {"me": user.get_username(), "display_name": display_name(user)},
        },
        status=status,
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    search = request.GET.get("q", "").strip()
    people = list(selectors.people(user, search)[:PEOPLE_SHOWN])
    return page(
        request,
        "calls/home.html",
        {
            "people": selectors.user_snapshots(people),
            "search": search,
            "recent_calls": _recent_calls(user),
        },
    )


@login_required
def call_page(request: HttpRequest, call_id: str) -> HttpResponse:
    try:
        call = selectors.call_for_user(signed_in(request), validation.call_id(call_id))
    except CallError:
        # Not a participant: the same 404 as a call that does not exist (nothing is leaked).
        raise Http404("No such call.") from None
    snapshot = selectors.snapshots([call])[0]
    names = {p.user.get_username(): display_name(p.user) for p in call.participants.all()}
    return page(request, "calls/call.html", {"call": snapshot, "names": names})


@login_required
def new_call(request: HttpRequest) -> HttpResponse:
    """The call page before the call exists: the page opens its socket first and then starts
    the call over REST, so no event or WebRTC offer can reach this device while it navigates."""
    wanted = [u for u in request.GET.get("to", "").split(",") if u][
        : settings.CALLSITE["MAX_INVITEES_PER_REQUEST"]
    ]
    call_type = request.GET.get("type", "video")
    if call_type not in ("video", "audio"):
        call_type = "video"
    user = signed_in(request)
    me = user.get_username()
    users = {u.get_username(): u for u in UserModel.objects.filter(username__in=wanted)}
    names = {me: display_name(user)}
    names.update({name: display_name(u) for name, u in users.items()})
    draft = {
        "id": "",
        "inviter": me,
        "type": call_type,
        "state": "ringing",
        "end_reason": None,
        "participants": [
            {"user": me, "role": "inviter", "state": "accepted", "updated_at": None},
            *(
                {"user": name, "role": "invitee", "state": "inviting", "updated_at": None}
                for name in dict.fromkeys(wanted)
            ),
        ],
    }
    return page(request, "calls/call.html", {"call": draft, "names": names})


@login_required
@require_POST
def mark_missed_seen(request: HttpRequest) -> HttpResponse:
    MissedCallsSeen.objects.update_or_create(
        user=signed_in(request), defaults={"seen_at": timezone.now()}
    )
    return HttpResponseRedirect(reverse("home"))


def _plain_name(value: str) -> None:
    if not validation.plain_text(value):
        raise forms.ValidationError("Names cannot contain control or bidirectional characters.")


class ProfileForm(forms.Form):
    first_name = forms.CharField(
        max_length=150, required=False, label="First name", validators=[_plain_name]
    )
    last_name = forms.CharField(
        max_length=150, required=False, label="Last name", validators=[_plain_name]
    )


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            user.first_name = form.cleaned_data["first_name"].strip()
            user.last_name = form.cleaned_data["last_name"].strip()
            user.save(update_fields=["first_name", "last_name"])
            messages.success(request, f"Saved. People now see you as {display_name(user)}.")
            return HttpResponseRedirect(reverse("profile"))
        return page(request, "calls/profile.html", {"form": form}, status=400)
    form = ProfileForm(initial={"first_name": user.first_name, "last_name": user.last_name})
    return page(request, "calls/profile.html", {"form": form})


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """static/js/sw.js at /sw.js: a worker's scope can be no wider than the folder it is served
    from, and the push notifications it shows open pages anywhere on the site. Revalidated on
    every update check, so a new version reaches browsers at once."""
    path = finders.find("js/sw.js")
    if not isinstance(path, str):
        raise Http404("No service worker.")
    with open(path, "rb") as f:
        body = f.read()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
@never_cache
def csrf_token_view(request: HttpRequest) -> JsonResponse:
    """A CSRF token for the service worker, which cannot read the page's cookie: declining a call
    from a notification posts the REST reject with it. Other origins cannot read this answer."""
    return JsonResponse({"csrf_token": get_token(request)})
