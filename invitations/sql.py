"""Pieces every plain-SQL statement of the hot paths is built from (issue 9).

The statements themselves stay next to the code that runs them (selectors.py,
services/connect_sql.py, services/expiry_sql.py, services/statements.py, services/locking.py);
these are the few pieces they share, so that quoting and value conversion, both ways, are done
one way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Model


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


def field(model: type[Model], name: str) -> Field:
    """The model's concrete field ``name`` (a column, not a relation's reverse side)."""
    found = model._meta.get_field(name)
    assert isinstance(found, Field)
    return found


@dataclass(frozen=True)
class Columns:
    """Every column of a model as a plain SELECT lists them, and how a row of them becomes an
    instance as the ORM builds it: the backend's and the field's converters (SQLite: aware
    times, booleans, UUIDs from their hex), then ``Model.from_db``, so it saves and compares
    as usual. Made once per statement (its builder is cached): the converters are looked up
    here, not per value."""

    model: type[Model]
    sql: str  # ``alias.col, ...``
    count: int
    attnames: list[str]
    converters: list[tuple[int, Any, tuple[Callable[..., Any], ...]]]  # (index, col, functions)

    def instance(self, raw: Sequence[Any]) -> Any:
        values = list(raw)
        for i, col, functions in self.converters:
            values[i] = _convert(values[i], col, functions)
        return self.model.from_db(connection.alias, self.attnames, values)


def columns(model: type[Model], alias: str) -> Columns:
    """``Columns`` of every concrete field of ``model``, selected from the table as ``alias``."""
    fields = list(model._meta.concrete_fields)
    quote = connection.ops.quote_name
    converters = []
    for i, f in enumerate(fields):
        functions = _converters(f, connection.ops)
        if functions:
            converters.append((i, f.get_col(model._meta.db_table), functions))
    return Columns(
        model=model,
        sql=", ".join(f"{alias}.{quote(f.column)}" for f in fields),
        count=len(fields),
        attnames=[f.attname for f in fields],
        converters=converters,
    )


def insert(instances: Sequence[Model]) -> None:
    """Save new instances of one model with one plain ``INSERT``, as ``bulk_create`` would:
    each field's ``pre_save`` (``auto_now_add`` times), its ``get_db_prep_save``, and the
    database-generated primary keys set from ``RETURNING``. No signals, like ``bulk_create``.

    The invitation's own rows go in this way: through the ORM each insert was compiled anew on
    every call (bench/README.md, "Issue 9, seventh round")."""
    if not instances:
        return
    model = type(instances[0])
    statement, fields, returned = _insert_sql(model, len(instances))
    params = [
        f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in instances for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall() if returned else [()] * len(instances)
    for obj, row in zip(instances, rows, strict=True):
        for f, value in zip(returned, row, strict=True):
            setattr(obj, f.attname, from_db(f, value))
        obj._state.adding, obj._state.db = False, connection.alias


@functools.lru_cache(maxsize=64)
def _insert_sql(model: type[Model], rows: int) -> tuple[str, list[Field], list[Field]]:
    returned = list(model._meta.db_returning_fields)
    fields = [f for f in model._meta.concrete_fields if f not in returned]
    quote = connection.ops.quote_name
    statement = (
        f"INSERT INTO {table(model)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES {', '.join([f'({marks(fields)})'] * rows)}"
    )
    if returned:
        statement += f" RETURNING {', '.join(quote(f.column) for f in returned)}"
    return statement, fields, returned


def from_db(field: Field, value: Any) -> Any:
    """A column's value, read by a plain statement, as the ORM gives it: the backend's
    converters, then the field's (SQLite: aware times, booleans, UUIDs from their hex)."""
    col = field.get_col(field.model._meta.db_table)  # the field's own cached Col
    return _convert(value, col, _converters(field, connection.ops))


def _convert(value: Any, col: Any, functions: tuple[Callable[..., Any], ...]) -> Any:
    for convert in functions:
        value = convert(value, col, connection)
    return value


@functools.lru_cache(maxsize=1024)
def _converters(field: Field, ops: Any) -> tuple[Callable[..., Any], ...]:
    """Looked up once per field and connection (ops belong to one): the token check converts
    every column of a user on each request, and with the lookups cached it took 0.091 ms of CPU
    instead of 0.113 (SQLite, 5,000 checks, medians of 8 runs each in turn)."""
    col = field.get_col(field.model._meta.db_table)
    return tuple(ops.get_db_converters(col) + col.get_db_converters(ops.connection))
