"""WebRTC ICE servers (calls/ice.py): STUN and TURN, from the environment."""

from __future__ import annotations

import os
from typing import Any

from .env import env_int, env_list

CALLSITE_ICE: dict[str, Any] = {
    # Comma-separated, e.g. "stun:stun.example.org:3478". Empty by default: on localhost and on
    # one LAN host candidates are enough, and this server must not depend on a third party.
    "STUN_URLS": env_list("STUN_URLS", []),
    "TURN_URLS": env_list("TURN_URLS", []),
    # coturn's static-auth-secret (use-auth-secret); TURN is offered only when it is set.
    "TURN_SECRET": os.environ.get("TURN_SECRET", ""),
    # Seconds; capped at 30 minutes (calls/ice.py). Clients fetch again on each ICE restart.
    "TURN_TTL": env_int("TURN_TTL", 1800),
}
