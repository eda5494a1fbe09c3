"""Logging filters: request input never produces a traceback in the logs.

Django logs client errors with their exception attached: a bad Host header
(``django.security.DisallowedHost``), a 404 or 403 raised in a view (``django.request``). Each is
the client's doing, logged once as a line; a traceback there only floods the logs (and lets
anyone on the internet write pages of them). Tracebacks stay for what is our bug: status 500.
"""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _is_client_error(record):
            record.exc_info = None
            record.exc_text = None
        return True


def _is_client_error(record: logging.LogRecord) -> bool:
    if record.name.startswith("django.security"):
        return True
    status = getattr(record, "status_code", None)
    return record.name.startswith("django.request") and isinstance(status, int) and status < 500
