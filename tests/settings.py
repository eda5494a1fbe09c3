"""Test settings: the real settings, with fast password hashing and test-friendly limits."""

import os

os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"callsite-test-{os.getpid()}")

from callsite.settings import *  # noqa: E402,F403
from callsite.settings import CALLSITE, REST_FRAMEWORK  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"invitations": "100000/min", "token": "100000/min"},
}
CALLSITE = {**CALLSITE, "EMBEDDED_TIMERS": False}
