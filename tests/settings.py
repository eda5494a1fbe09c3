"""Test settings: the real settings, with fast password hashing and test-friendly limits."""

import os

os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"callsite-test-{os.getpid()}")

from callsite.settings import *  # noqa: E402,F403
from callsite.settings import CALLSITE, DATABASES, REST_FRAMEWORK  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "invitations": "100000/min",
        "token": "100000/min",
        "pair": "100000/min",
    },
}
CALLSITE = {**CALLSITE, "EMBEDDED_TIMERS": False}

# The race and timer tests open several connections at once (threads, worker pools). Django's
# in-memory SQLite test database is a shared-cache database whose table locks fail at once
# ("database table is locked") instead of waiting, so test on a real file, as production does:
# WAL, IMMEDIATE transactions and busy_timeout then behave exactly as in `make run`. One file per
# pytest process, so engineers running the suite side by side never share a database.
_db = DATABASES["default"]
if _db["ENGINE"].endswith("sqlite3") and not _db["TEST"].get("NAME"):
    import tempfile

    _name = f"callsite-test-{os.getpid()}.sqlite3"
    _db["TEST"]["NAME"] = os.path.join(tempfile.gettempdir(), _name)

# Worker threads (the timer worker's pool, sync_to_async) would otherwise keep their PostgreSQL
# connections for 60 s after a test, and the test database could not be dropped at the end.
_db["CONN_MAX_AGE"] = 0
