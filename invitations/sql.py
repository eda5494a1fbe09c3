"""Pieces every plain-SQL statement of the hot paths is built from (issue 9).

The statements themselves stay next to the code that runs them (selectors.py,
services/connect_sql.py, services/expiry_sql.py, services/statements.py, services/locking.py);
these are the few pieces they share, so that quoting and value conversion are done one way.
"""

from __future__ import annotations

from collections.abc import Sized
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def table(model: type[Model]) -> str:
    """The model's table name, quoted for the database in use."""
    return connection.ops.quote_name(model._meta.db_table)


def marks(values: Sized | int) -> str:
    """``%s, %s, ...``: one placeholder per value (or ``values`` of them, given a count)."""
    count = values if isinstance(values, int) else len(values)
    return ", ".join(["%s"] * count)


def when(value: datetime) -> Any:
    """A time as the database takes it for a DateTimeField (SQLite: UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)
