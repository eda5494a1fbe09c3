"""PostgreSQL, with timestamps read by psycopg's C loader instead of its Python one.

Django registers its own ``timestamptz`` loader on every connection (to stamp each value with
the connection's time zone), and it derives from psycopg's pure-Python loader, so with
psycopg's C extension installed every timestamp read still parses in Python: 10 % of the timer
worker's time, reading a batch's participants (issue 9, bench/README.md "eleventh round"). This
is Django ticket #36960 (psycopg #1273: the C loader cannot be subclassed).

This backend registers a loader that does what Django's does, the same ``replace(tzinfo=...)``
of the same value, around the loader psycopg itself uses for the type: the C one when psycopg's
extension is installed, else the same Python one as before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
    get_adapters_template,
)
from psycopg import adapt, pq
from psycopg.abc import AdaptContext, Loader

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
# psycopg's own loader for the type: its C class when the extension is there, else its Python
# one (public API; psycopg always registers one for timestamptz).
_registered = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)
assert _registered is not None
_PSYCOPG_LOADER: type[Loader] = _registered


class TzLoader(adapt.Loader):
    """Django's ``BaseTzLoader``, parsing with psycopg's own (C) loader."""

    timezone: Any = None

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._parse = _PSYCOPG_LOADER(oid, context).load

    def load(self, data: Any) -> Any:
        return self._parse(data).replace(tzinfo=self.timezone)


@lru_cache
def adapters_template(use_tz: bool, timezone: Any) -> adapt.AdaptersMap:
    """Django's adapters for a connection, with ``TzLoader`` for timestamptz."""
    ctx = adapt.AdaptersMap(get_adapters_template(use_tz, timezone))
    loader = type("SpecificTzLoader", (TzLoader,), {"timezone": timezone})
    ctx.register_loader("timestamptz", loader)
    return ctx


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if "context" in params:
            params["context"] = adapters_template(settings.USE_TZ, self.timezone)
        return params
