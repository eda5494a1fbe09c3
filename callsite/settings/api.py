"""The REST API: DRF, its schema, throttle counters and knox tokens."""

from __future__ import annotations

import os
from datetime import timedelta

from .channel_layer import CHANNEL_LAYER_PREFIX, REDIS_URL
from .core import NUM_PROXIES
from .env import env_float

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
    "TOKEN_TTL": timedelta(days=env_float("TOKEN_TTL_DAYS", 30)),
    "AUTO_REFRESH": True,
    # Renewing writes the row: at most once an hour per token, not on every request.
    "MIN_REFRESH_INTERVAL": 3600,
    "AUTH_HEADER_PREFIX": "Token",
}
