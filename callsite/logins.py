"""Password guessing: who the client is, and what a locked-out login answers.

Every login path (``POST /api/auth/token/``, the browser's ``/accounts/login/``, the admin's
``/admin/login/``) goes through ``django.contrib.auth.authenticate``, so one library watching
that call covers all three: django-axes. It is the ecosystem's choice for exactly this (counts
failed logins per username and per client address, shared by every server process through the
database, visible and resettable in the admin, ``manage.py axes_reset``), where DRF throttles see
only DRF views and count requests, not failures. Two counters, each on its own:

- per username: ``LOGIN_FAILURE_LIMIT`` failures (default 10) lock that account's logins for
  ``LOGIN_COOLOFF_MINUTES`` (default 30) after the last failure, from every address: at most
  ~20 guesses per account per hour however many addresses an attacker has;
- per client address: the same numbers, over all usernames (password spraying).

A locked-out account still works where it is signed in: tokens and sessions are not touched,
so an attacker who locks someone out does not sign them out of their phone.

The token endpoint also keeps its DRF throttle per client address (``THROTTLE_TOKEN``), which
counts every request, successful or not and whoever sends it.

The client address is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` trusted proxies stand in front
(then the address the outermost of them saw, from the right of ``X-Forwarded-For``): the
header's other entries are the client's to write, so they are never a throttle key.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from invitations.errors import error_body


def client_ip(request: HttpRequest) -> str:
    """The client's address as the trusted proxies (``NUM_PROXIES``) report it."""
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    hops = int(settings.NUM_PROXIES)
    if hops > 0:
        forwarded = [
            a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()
        ]
        if forwarded:
            return str(forwarded[-min(hops, len(forwarded))])
    return remote


def retry_after_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """django-axes' answer to a locked-out login: 429 with Retry-After.

    In API.md's error envelope under /api/, a short page elsewhere (the login pages). A failure
    during the lockout starts the cool-off again (django-axes' default), so the full cool-off is
    exactly how long to wait.
    """
    wait = retry_after_seconds()
    message = (
        f"Too many failed sign-in attempts for this account or from this address; "
        f"try again in {max(1, wait // 60)} minutes."
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body("throttled", message, {"retry_after": wait}), status=429
        )
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response


class LoginAttemptBackend(AxesStandaloneBackend):
    """django-axes' backend, for calls that come with a request.

    Every login path passes the request; an ``authenticate()`` without one is code on the server
    (Django's test client ``login()``, a management command), where there is no client to count.
    django-axes would refuse those outright.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)
