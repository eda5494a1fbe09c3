"""PostgreSQL's timestamps read by psycopg's C loader, as Django's would (callsite/db/postgresql).

What a user would notice if the loader were wrong: a call's times shifted, or stamped with the
wrong zone. So the values read through the project's backend must be exactly those Django's own
backend reads, for the same rows, and every one aware in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.db.utils import ConnectionHandler
from django.test import override_settings

from callsite.db.postgresql.base import TIMESTAMPTZ_OID

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

SAMPLES = [
    "0001-01-01 00:00:00+00",
    "1999-12-31 23:59:59.999999+00",
    "2026-03-29 01:30:00.5+02",  # an offset: PostgreSQL answers in the session's zone, UTC
    "2026-12-07 15:00:00.000001-08",
    "9999-12-31 23:59:59+00",
]


def read(engine: str, time_zone: str | None = None, samples: list[str] = SAMPLES) -> list[datetime]:
    settings = {**connection.settings_dict, "ENGINE": engine, "OPTIONS": {}}
    settings["TIME_ZONE"] = time_zone
    handler = ConnectionHandler({"default": settings})
    try:
        with handler["default"].cursor() as cursor:
            cursor.execute("SELECT unnest(%s::text[])::timestamptz", [samples])
            return [row[0] for row in cursor.fetchall()]
    finally:
        handler.close_all()


def test_values_are_djangos_own() -> None:
    ours = read("callsite.db.postgresql")
    djangos = read("django.db.backends.postgresql")
    assert ours == djangos
    assert [v.tzinfo for v in ours] == [UTC] * len(SAMPLES)
    assert ours[2] == datetime(2026, 3, 28, 23, 30, 0, 500000, tzinfo=UTC)
    assert ours[3] - ours[2] == timedelta(days=253, hours=23, minutes=30, microseconds=-499999)


def test_a_database_in_another_time_zone_reads_as_with_django() -> None:
    """DATABASES' TIME_ZONE (for a database shared with other software) behaves as before."""
    later = SAMPLES[1:]  # year 1 in UTC is 1 BC in New York: neither reads it
    ours = read("callsite.db.postgresql", "America/New_York", later)
    djangos = read("django.db.backends.postgresql", "America/New_York", later)
    assert ours == djangos
    assert [(v.tzinfo, v.utcoffset()) for v in ours] == [(v.tzinfo, v.utcoffset()) for v in djangos]


def test_without_use_tz_values_are_naive_as_with_django() -> None:
    with override_settings(USE_TZ=False):
        ours = read("callsite.db.postgresql")
        djangos = read("django.db.backends.postgresql")
    assert ours == djangos
    assert {v.tzinfo for v in ours} == {None}


def test_the_project_reads_with_psycopgs_own_loader() -> None:
    """With psycopg's C extension installed (requirements.txt), the parse is the C one."""
    assert connection.settings_dict["ENGINE"] == "callsite.db.postgresql"
    with connection.cursor() as cursor:
        loader = cursor.connection.adapters.get_loader(TIMESTAMPTZ_OID, psycopg.pq.Format.TEXT)
        instance = loader(TIMESTAMPTZ_OID, cursor.connection)
    assert psycopg.pq.__impl__ in ("binary", "c")
    assert type(instance._parse.__self__).__module__.startswith(("psycopg_binary", "psycopg_c"))
