"""ICE servers for browsers and phones, with short-lived TURN credentials.

TURN uses coturn's ``use-auth-secret`` scheme (the "TURN REST API"): the username is
``<expiry unix time>:<username>`` and the credential is base64(HMAC-SHA1(secret, username)), so
coturn can check it without a database and it stops working at the expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from django.conf import settings


def turn_credentials(
    username: str, *, secret: str, ttl: int, now: float | None = None
) -> dict[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl)
    turn_user = f"{expiry}:{username}"
    digest = hmac.new(secret.encode(), turn_user.encode(), hashlib.sha1).digest()
    return {"username": turn_user, "credential": base64.b64encode(digest).decode()}


# TURN relays media at the operator's expense: credentials live at most this long.
MAX_TURN_TTL = 30 * 60


def ice_servers_for(username: str, *, with_turn: bool) -> list[dict[str, Any]]:
    """STUN for anyone signed in; TURN only when ``with_turn`` (the user is in a live call)."""
    cfg = settings.CALLSITE_ICE
    servers: list[dict[str, Any]] = []
    if cfg["STUN_URLS"]:
        servers.append({"urls": cfg["STUN_URLS"]})
    if with_turn and cfg["TURN_URLS"] and cfg["TURN_SECRET"]:
        ttl = min(cfg["TURN_TTL"], MAX_TURN_TTL)
        servers.append(
            {
                "urls": cfg["TURN_URLS"],
                **turn_credentials(username, secret=cfg["TURN_SECRET"], ttl=ttl),
            }
        )
    return servers
