"""Settings for callsite.

Everything that differs between the embedded default and production comes from the
environment, with defaults that make `make run` work on a fresh machine:

- ``CALLSITE_ENV``: ``embedded`` (default) or ``production``. Production refuses to start with
  ``DEBUG`` on or without its own ``SECRET_KEY``.
- ``DATABASE_URL``: e.g. ``postgres://user@host:5432/db`` or ``sqlite:////path/file.sqlite3``
  (the same SQLite engine and options as ``SQLITE_PATH``); default is a SQLite file under ``var/``.
- ``DATABASE_POOLER``: ``transaction`` behind PgBouncer in transaction mode.
- ``REDIS_URL``: e.g. ``redis://127.0.0.1:6379/0``; default is the in-memory channel layer.
- ``SECRET_KEY``, ``DEBUG``, ``ALLOWED_HOSTS`` (comma separated), ``CSRF_TRUSTED_ORIGINS``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CALLSITE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEFAULT_SECRET_KEY = "callsite-embedded-insecure-secret-key-change-me"

CALLSITE_ENV = os.environ.get("CALLSITE_ENV", "embedded").strip().lower()
if CALLSITE_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured("CALLSITE_ENV must be 'embedded' or 'production'.")
PRODUCTION = CALLSITE_ENV == "production"

SECRET_KEY = os.environ.get("SECRET_KEY") or DEFAULT_SECRET_KEY
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("Refusing to start in production with DEBUG on.")
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "Refusing to start in production without SECRET_KEY (at least 32 characters)."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Before channels and daphne so that our `runworker` (which starts the timer
    # instance eagerly) overrides theirs.
    "invitations",
    "calls",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    # Only for the migration that hashes the tokens it issued before knox (invitations 0004).
    "rest_framework.authtoken",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First: request id, log context, HTTP metrics and the access line (callsite/middleware.py).
    "callsite.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429 (callsite/logins.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "callsite.urls"
ASGI_APPLICATION = "callsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

# The threads of one process that hold a database connection at the same time: the HTTP
# requests BoundedHTTP lets in (callsite/asgi.py), the WebSocket consumers' database executor
# (invitations/realtime/executor.py) and the timer worker's concurrent expiries (timers.py).
HTTP_CONCURRENCY = int(os.environ.get("CALLSITE_HTTP_CONCURRENCY", "8"))
WS_DB_THREADS = int(os.environ.get("CALLSITE_WS_DB_THREADS", "4"))
TIMER_CONCURRENCY = int(os.environ.get("CALLSITE_TIMER_CONCURRENCY", "4"))

DATABASE_URL = os.environ.get("DATABASE_URL", "")


def sqlite_database(path: str) -> dict[str, Any]:
    """The project's SQLite set-up, whichever way the file was named (SQLITE_PATH or a URL)."""
    return {
        # Django's SQLite backend plus an in-process queue for writers (see the module).
        "ENGINE": "callsite.db.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # IMMEDIATE takes the write lock when a transaction starts, so two racing
            # transactions serialise instead of failing to upgrade a read lock.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
            ),
        },
        "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
        # Kept by the long-lived request and socket threads (callsite/handlers.py, realtime/
        # executor.py) instead of opened per request: opening one, with its PRAGMAs, was 8% of
        # an invitation's CPU (py-spy, issue 9). Checked before reuse, closed after an error.
        "CONN_MAX_AGE": int(os.environ.get("SQLITE_CONN_MAX_AGE", "600")),
        "CONN_HEALTH_CHECKS": True,
    }


if DATABASE_URL.startswith("sqlite:"):
    # dj_database_url would pick Django's stock backend: deferred transactions and no writer
    # queue, so two racing answers to one call each failed with "database is locked" (issue 11).
    DATABASES: dict[str, dict[str, Any]] = {
        "default": sqlite_database(str(dj_database_url.parse(DATABASE_URL)["NAME"]))
    }
elif DATABASE_URL:
    # CONN_MAX_AGE 0: under ASGI each request runs in a thread of its own (ThreadSensitiveContext),
    # so a kept connection is never reused and stays open until its thread is collected; under
    # load that ran PostgreSQL out of connections ("too many clients", bench/ in issue 5).
    DATABASES = {"default": dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))}
    DATABASES["default"].setdefault("TEST", {})
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool("CALLSITE_DB_POOL", True):
        # So connections are reused anyway: a thread's "close" hands its connection back to
        # psycopg's pool (Django 5.1+) instead of ending it, and the next request's thread takes
        # it, skipping PostgreSQL's fork and authentication. Sized to every thread that may hold
        # one at once (above), plus two for management work (startup, the presence sweep), so a
        # thread never waits for a connection; the timeout only bounds a wait if that is wrong.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": HTTP_CONCURRENCY + WS_DB_THREADS + TIMER_CONCURRENCY + 2,
            "timeout": float(os.environ.get("CALLSITE_DB_POOL_TIMEOUT", "10")),
        }
    if os.environ.get("DATABASE_POOLER", "").strip().lower() == "transaction":
        # PgBouncer in transaction mode hands each transaction any server connection: no
        # server-side cursors, and no prepared statements (psycopg prepares a query after 5 runs).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    if os.environ.get("TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"]["NAME"] = os.environ["TEST_DATABASE_NAME"]
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": sqlite_database(os.environ.get("SQLITE_PATH", str(VAR_DIR / "callsite.sqlite3")))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ----------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "callsite")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "callsite.channel_layers.CountingRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": url,
                        # redis-py 8 defaults to a 5 s read timeout, which kills receivers that
                        # wait longer than that for a message; and to a 100-connection async pool
                        # that raises instead of waiting under load.
                        "socket_timeout": None,
                        "max_connections": int(os.environ.get("REDIS_MAX_CONNECTIONS", "1000")),
                    }
                    for url in REDIS_URL.split(",")
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                # Per-channel queue size before group_send drops (counted and logged).
                "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "5000")),
                # Sockets stay open for days: group membership must outlive them.
                "group_expiry": int(os.environ.get("CHANNEL_LAYER_GROUP_EXPIRY", str(30 * 86400))),
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer, counting its drops (see callsite/channel_layers.py).
            "BACKEND": "callsite.channel_layers.CountingInMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "group_expiry": 30 * 86400, "expiry": 60},
        }
    }

# --- Auth, i18n, static ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "callsite.logins.LoginAttemptBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Password guessing (callsite/logins.py) ---------------------------------------------------

# Trusted reverse proxies in front of the server, each appending to X-Forwarded-For (nginx with
# $proxy_add_x_forwarded_for). 0: the client is REMOTE_ADDR. Used by every per-address limit.
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "30")))
AXES_CLIENT_IP_CALLABLE = "callsite.logins.client_ip"
AXES_LOCKOUT_CALLABLE = "callsite.logins.lockout_response"
# Failed logins are a WARNING of django-axes; passwords are never logged (AXES_SENSITIVE_...).
AXES_VERBOSE = env_bool("LOGIN_LOG_FAILURES", True)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Form posts (the login pages); the ASGI body limit (callsite/bodylimit.py) comes first anyway.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

# --- HTTPS and browser protections (docs/security.md) --------------------------------------

# The pages load only this origin's own modules and styles: no inline script, no CDN. 'self'
# covers the same origin's ws:/wss: for /ws/ in current browsers.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF]}}

# Behind a TLS-terminating proxy: the header (and value) by which it says the client used HTTPS,
# e.g. "X-Forwarded-Proto,https". Only set it if the proxy always sets (or strips) that header.
# BEHIND_TLS_PROXY=1 is the short form for deploy/nginx, which sets X-Forwarded-Proto.
_proxy_default = ["X-Forwarded-Proto", "https"] if env_bool("BEHIND_TLS_PROXY", False) else []
_proxy_ssl = env_list("SECURE_PROXY_SSL_HEADER", _proxy_default)
if len(_proxy_ssl) == 2:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl[0].upper().replace("-", "_"), _proxy_ssl[1])
elif _proxy_ssl:
    raise ImproperlyConfigured('SECURE_PROXY_SSL_HEADER must look like "X-Forwarded-Proto,https".')

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes on the private network speak plain HTTP to the server itself.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 86400)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Asking browsers to preload the domain is the operator's decision (hard to undo), not
        # a default; docs/security.md says how.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- REST framework -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "invitations.api.authentication.DeviceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON only (API.md); a form-encoded body gets 415 instead of half-parsing.
    # Ours refuses deep nesting with 400 instead of a RecursionError (a 500).
    "DEFAULT_PARSER_CLASSES": ["invitations.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "invitations.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "invitations": os.environ.get("THROTTLE_INVITATIONS", "120/min"),
        "token": os.environ.get("THROTTLE_TOKEN", "30/min"),
        "pair": os.environ.get("THROTTLE_PAIR", "6/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "callsite API",
    "DESCRIPTION": "Call invitations: invite, ring, accept, reject, cancel, timeout, busy, "
    "group calls. See API.md for the WebSocket half of the contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from this server: these machines (and many deployments) have no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

if REDIS_URL:
    # Throttle counters shared by every server process.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL.split(",")[0],
            "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
        }
    }

# API tokens: django-rest-knox stores a hash of each, and it expires unless used (API.md).
KNOX_TOKEN_MODEL = "knox.AuthToken"  # knox's own model (the migrations name it through this)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=float(os.environ.get("TOKEN_TTL_DAYS", "30"))),
    "AUTO_REFRESH": True,
    # Renewing writes the row: at most once an hour per token, not on every request.
    "MIN_REFRESH_INTERVAL": 3600,
    "AUTH_HEADER_PREFIX": "Token",
}

# --- Call invitation limits (API.md "Limits") -----------------------------------------------

# Typed as a whole: values are ints, floats and strings, read by key.
CALLSITE: dict[str, Any] = {
    "MAX_INVITEES_PER_REQUEST": int(os.environ.get("CALLSITE_MAX_INVITEES", "9")),
    "MAX_ACTIVE_PARTICIPANTS": int(os.environ.get("CALLSITE_MAX_PARTICIPANTS", "10")),
    "MIN_TIMEOUT": 1,
    "MAX_TIMEOUT": int(os.environ.get("CALLSITE_MAX_TIMEOUT", "600")),
    "DEFAULT_TIMEOUT": int(os.environ.get("CALLSITE_DEFAULT_TIMEOUT", "60")),
    "EXTENDED_DATA_MAX_BYTES": 2048,
    "REASON_MAX_LENGTH": 32,
    "CALLER_OFFLINE_GRACE": float(os.environ.get("CALLSITE_CALLER_OFFLINE_GRACE", "30")),
    # Each server process refreshes its sockets' presence rows this often; rows older than the
    # TTL belong to a dead process and are swept, so its users do not stay online for ever.
    "PRESENCE_HEARTBEAT": float(os.environ.get("CALLSITE_PRESENCE_HEARTBEAT", "15")),
    "PRESENCE_TTL": float(os.environ.get("CALLSITE_PRESENCE_TTL", "45")),
    # A user goes offline for their subscribers only this long after their last socket closed,
    # so a page reload (or a phone switching networks) is no change at all (API.md "Presence").
    "PRESENCE_GRACE": float(os.environ.get("CALLSITE_PRESENCE_GRACE", "5")),
    # Usernames one socket may watch with one presence.subscribe.
    "PRESENCE_SUBSCRIBE_MAX": int(os.environ.get("CALLSITE_PRESENCE_SUBSCRIBE_MAX", "500")),
    # How often the timer worker re-reads pending deadlines from the database, as a safety
    # net for timer.schedule messages the channel layer dropped (delivery is at most once).
    "TIMER_RESCAN_SECONDS": float(os.environ.get("CALLSITE_TIMER_RESCAN", "30")),
    # In the embedded default the timer worker runs inside the server process.
    "EMBEDDED_TIMERS": env_bool("CALLSITE_EMBEDDED_TIMERS", not REDIS_URL),
    # HTTP requests one process runs at once (each in a thread of its own, with its own database
    # connection); the rest wait their turn on the event loop. See callsite/asgi.py.
    "HTTP_CONCURRENCY": HTTP_CONCURRENCY,
    # Seconds a request may wait for one of those places before it is answered 503 (overload).
    "HTTP_QUEUE_WAIT": float(os.environ.get("CALLSITE_HTTP_QUEUE_WAIT", "5")),
    # Threads that run the WebSocket consumers' database calls (invitations/realtime/).
    "WS_DB_THREADS": WS_DB_THREADS,
    # Expiries the timer worker runs at once; unset: TIMER_CONCURRENCY on PostgreSQL, one on
    # SQLite (a single writer). See invitations/timers.py.
    "TIMER_CONCURRENCY": int(os.environ.get("CALLSITE_TIMER_CONCURRENCY", "0")) or None,
    # Request bodies (any path) and WebSocket frames: larger ones answer 413 / close (API.md).
    "MAX_REQUEST_BODY_BYTES": int(os.environ.get("CALLSITE_MAX_BODY_BYTES", str(64 * 1024))),
    # JSON nesting a request body or a frame may have; clients send depth 3 at most. Deeper ones
    # would hit Python's recursion limit (a 500) or msgpack's on the Redis channel layer.
    "MAX_JSON_DEPTH": int(os.environ.get("CALLSITE_MAX_JSON_DEPTH", "32")),
    # Tokens a user may hold at once (one per device); logging in past it drops the oldest.
    "MAX_TOKENS_PER_USER": int(os.environ.get("CALLSITE_MAX_TOKENS_PER_USER", "20")),
    # Sockets (API.md "Limits"): per user; a token bucket of messages per socket, and how long a
    # socket may stay over it before it is closed; output waiting for a client that stopped
    # reading.
    "MAX_SOCKETS_PER_USER": int(os.environ.get("CALLSITE_MAX_SOCKETS_PER_USER", "10")),
    "WS_RATE": float(os.environ.get("CALLSITE_WS_RATE", "20")),
    "WS_BURST": int(os.environ.get("CALLSITE_WS_BURST", "100")),
    "WS_FLOOD_SECONDS": float(os.environ.get("CALLSITE_WS_FLOOD_SECONDS", "10")),
    "WS_MAX_UNSENT_BYTES": int(os.environ.get("CALLSITE_WS_MAX_BUFFER", str(1024 * 1024))),
    # WebSocket tickets (POST /api/ws/ticket/): single use, this many seconds.
    "WS_TICKET_SECONDS": int(os.environ.get("CALLSITE_WS_TICKET_SECONDS", "30")),
    # How often each process re-checks its sockets' credentials (revoked token, password
    # changed, user deactivated) and closes those that lost them with 4401.
    "AUTH_RECHECK_SECONDS": float(os.environ.get("CALLSITE_AUTH_RECHECK_SECONDS", "10")),
}

TIMER_CHANNEL = "call-timers"

# --- Logs and metrics (callsite/logs.py, callsite/metrics.py) ----------------------------------

# json: one object per line, for journald, Docker and log shippers; text: for a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json" if PRODUCTION else "text").strip().lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'.")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "callsite.logs.ContextFilter"},
        "client_errors": {"()": "callsite.logfilters.ClientErrorsWithoutTraceback"},
    },
    "formatters": {
        "json": {"()": "callsite.logs.JSONFormatter"},
        "text": {"()": "callsite.logs.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL or "WARNING"},
    "loggers": {
        # Django's own console handler prints plain text (when DEBUG is on): through ours instead.
        "django": {"handlers": [], "propagate": True},
        "callsite": {"level": LOG_LEVEL or "INFO"},
        "invitations": {"level": LOG_LEVEL or "INFO"},
    },
}

METRICS: dict[str, Any] = {
    # Who may read GET /metrics without a token: loopback by default (a scraper on the host).
    "ALLOWED_NETWORKS": env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"]),
    # With a token set, "Authorization: Bearer <token>" is let in from anywhere.
    "TOKEN": os.environ.get("METRICS_TOKEN", ""),
}

# --- WebRTC ICE servers ---------------------------------------------------------------------

CALLSITE_ICE: dict[str, Any] = {
    # Comma-separated, e.g. "stun:stun.example.org:3478". Empty by default: on localhost and on
    # one LAN host candidates are enough, and this server must not depend on a third party.
    "STUN_URLS": env_list("STUN_URLS", []),
    "TURN_URLS": env_list("TURN_URLS", []),
    # coturn's static-auth-secret (use-auth-secret); TURN is offered only when it is set.
    "TURN_SECRET": os.environ.get("TURN_SECRET", ""),
    # Seconds; capped at 30 minutes (calls/ice.py). Clients fetch again on each ICE restart.
    "TURN_TTL": int(os.environ.get("TURN_TTL", "1800")),
}

# --- Push (issue 12) ---------------------------------------------------------------------------
# Rings and stops for devices that hold no socket (API.md "Push", docs/push.md). A provider is
# on only when its credentials are set: with none of these, push is off and the call path reads
# nothing about push devices. Base URLs and CA bundles exist so tests (and operators behind a
# proxy) can point each sender elsewhere; the defaults are the real services.

# Seconds a device with an open socket has to ack an invitation before it is pushed anyway
# (iOS keeps a suspended app's socket looking open).
PUSH_ACK_GRACE = float(os.environ.get("PUSH_ACK_GRACE", "3"))
# Seconds a stop (call.ring_stopped) is retried for: the ring it answers may already be past
# its deadline, and a stop nobody received for this long is moot (the app times out itself).
PUSH_STOP_TTL = float(os.environ.get("PUSH_STOP_TTL", "30"))
# The channel the delivery worker listens on (`manage.py runworker push-delivery`).
PUSH_CHANNEL = "push-delivery"
# Pushes one worker has in flight at once, and how often it rescans the table for due rows a
# lost wake-up message would otherwise leave waiting.
PUSH_CONCURRENCY = int(os.environ.get("PUSH_CONCURRENCY", "20"))
PUSH_RESCAN_SECONDS = float(os.environ.get("PUSH_RESCAN_SECONDS", "5"))
# Retries: jittered exponential backoff from this base, never past the push's deadline.
PUSH_RETRY_BASE = float(os.environ.get("PUSH_RETRY_BASE", "0.5"))
PUSH_RETRY_MAX = float(os.environ.get("PUSH_RETRY_MAX", "30"))

# Webhook gateway (operators with their own push stack): with both set, every apns, apns_voip
# and fcm push goes here instead of Apple or Google, signed per Standard Webhooks.
PUSH_WEBHOOK_URL = os.environ.get("PUSH_WEBHOOK_URL", "")
PUSH_WEBHOOK_SECRET = os.environ.get("PUSH_WEBHOOK_SECRET", "")  # whsec_<base64>
PUSH_WEBHOOK_CA_BUNDLE = os.environ.get("PUSH_WEBHOOK_CA_BUNDLE", "")  # "": the system's CAs

# Web Push (VAPID): the server's key pair and its contact (mailto: or https: URL).
WEBPUSH_VAPID_PRIVATE_KEY = os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY", "")
WEBPUSH_VAPID_PUBLIC_KEY = os.environ.get("WEBPUSH_VAPID_PUBLIC_KEY", "")
WEBPUSH_VAPID_SUBJECT = os.environ.get("WEBPUSH_VAPID_SUBJECT", "")
WEBPUSH_CA_BUNDLE = os.environ.get("WEBPUSH_CA_BUNDLE", "")  # "": the system's CAs
# Hosts (and their subdomains) a subscription's endpoint may name: the server POSTs there, so
# not just any host, the internal network included. "*" allows any; http only for loopback.
WEBPUSH_ENDPOINT_HOSTS = env_list(
    "WEBPUSH_ENDPOINT_HOSTS",
    [
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    ],
)

# APNs, token-based (a .p8 key); the VoIP topic is APNS_TOPIC + ".voip".
APNS_KEY_FILE = os.environ.get("APNS_KEY_FILE", "")
APNS_KEY_ID = os.environ.get("APNS_KEY_ID", "")
APNS_TEAM_ID = os.environ.get("APNS_TEAM_ID", "")
APNS_TOPIC = os.environ.get("APNS_TOPIC", "")
APNS_BASE_URL = os.environ.get("APNS_BASE_URL", "https://api.push.apple.com")
APNS_CA_BUNDLE = os.environ.get("APNS_CA_BUNDLE", "")

# FCM HTTP v1: a service-account JSON file (its token_uri is the OAuth endpoint).
FCM_SERVICE_ACCOUNT_FILE = os.environ.get("FCM_SERVICE_ACCOUNT_FILE", "")
FCM_BASE_URL = os.environ.get("FCM_BASE_URL", "https://fcm.googleapis.com")
FCM_CA_BUNDLE = os.environ.get("FCM_CA_BUNDLE", "")

# The OpenAPI document names the providers' enum once, wherever a push field uses it.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "PushProviderEnum": "invitations.push.models.Provider",
}
