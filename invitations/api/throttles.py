import hashlib
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


class PairThrottle(SimpleRateThrottle):
    """Invitations from one caller to one callee (API.md: 6 a minute), so nobody can keep someone
    else ringing, or busy, without end. Counted per named invitee, before the view runs."""

    scope = "pair"

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None or not request.user.is_authenticated:
            return True
        data = request.data if isinstance(request.data, dict) else {}
        names = data.get("invitees")
        if not isinstance(names, list):
            return True  # the view refuses it
        allowed, duration = self.parse_rate(self.rate)
        if allowed is None or duration is None:
            return True
        self.now = self.timer()
        keys: dict[str, list[float]] = {}
        for name in {n for n in names[:50] if isinstance(n, str)}:
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            key = self.cache_format % {
                "scope": self.scope,
                "ident": f"{request.user.pk}:{digest}",
            }
            history = [t for t in self.cache.get(key, []) if t > self.now - duration]
            if len(history) >= allowed:
                self.history = history
                return self.throttle_failure()
            keys[key] = history
        for key, history in keys.items():
            self.cache.set(key, [self.now, *history], duration)
        return True

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return None  # one key per invitee: see allow_request
