from typing import Any

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from callsite.logins import client_ip


class InvitationThrottle(UserRateThrottle):
    """Starting calls and inviting people, per user (commercial SDKs cap this at ~20/s)."""

    scope = "invitations"


class TokenThrottle(SimpleRateThrottle):
    """Every request to the token endpoint, per client address, signed in or not.

    (DRF's AnonRateThrottle skips any caller who sends a valid token.) Failed passwords are
    counted per account and per address by django-axes (callsite/logins.py).
    """

    scope = "token"

    def get_ident(self, request: Any) -> str:
        return client_ip(request)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
