"""Logs and metrics (callsite/logs.py, callsite/metrics.py)."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .env import PRODUCTION, env_list

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
