"""Many rows of one table at once, the fastest way each database offers.

A nightly order file becomes hundreds of thousands of rows (jobs, their parts, status
history, timeline events). On SQLite, multi-row INSERT ... RETURNING through SQLAlchemy Core
is fast. On PostgreSQL the same statements spend their time in the driver rendering and
parsing statements of tens of thousands of parameters, so there the rows go in with COPY,
their ids taken from the table's own sequence first. Either way the rows join the session's
transaction: a later failure rolls them back with everything else.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from sqlalchemy import JSON, Table, func, insert, select
from sqlalchemy.orm import Session

from fieldplan.db import Base, UTCDateTime


def insert_rows(
    session: Session, model: type[Base], rows: list[dict[str, Any]], *, ids: bool = False
) -> list[int]:
    """Insert `rows` (dicts by column name, every row the same keys or a subset) into the
    model's table; with `ids`, return the new rows' ids in the rows' order."""
    if not rows:
        return []
    table: Table = model.__table__  # type: ignore[assignment]
    if session.get_bind().dialect.name == "postgresql":
        return _copy(session, table, rows, ids=ids)
    if not ids:
        session.execute(insert(table), rows)
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _copy(session: Session, table: Table, rows: list[dict[str, Any]], *, ids: bool) -> list[int]:
    new_ids: list[int] = []
    if ids:
        sequence = func.pg_get_serial_sequence(table.name, "id")
        new_ids = list(
            session.scalars(
                select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
            )
        )
        rows = [row | {"id": new_id} for row, new_id in zip(rows, new_ids, strict=True)]
    names = sorted({name for row in rows for name in row})
    columns = [table.c[name] for name in names]
    defaults = {c.name: _default(c.default) for c in table.columns if c.name not in names}
    defaults = {name: value for name, value in defaults.items() if value is not _NONE}
    names += list(defaults)
    columns += [table.c[name] for name in defaults]
    convert = [_converter(column.type) for column in columns]
    # The session's own connection, inside its open transaction.
    raw: Any = session.connection().connection.dbapi_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            values = {**defaults, **row}
            copy.write_row([f(values.get(n)) for f, n in zip(convert, names, strict=True)])
    return new_ids


_NONE = object()


def _default(default: Any) -> Any:
    """The column's Python-side default (a value, or the function's value now), as an
    INSERT through SQLAlchemy would fill it in; `_NONE` when it has none."""
    if default is None:
        return _NONE
    if getattr(default, "is_callable", False):
        return default.arg(None)  # SQLAlchemy wraps a plain function to take a context
    if getattr(default, "is_scalar", False):
        return default.arg
    return _NONE


def _converter(kind: Any) -> Any:
    """What SQLAlchemy's bind processing would do for the column types imports write."""
    if isinstance(kind, UTCDateTime):
        return lambda v: None if v is None else v.astimezone(UTC).replace(tzinfo=None)
    if isinstance(kind, JSON):
        return lambda v: None if v is None else json.dumps(v)
    return lambda v: str(v) if isinstance(v, str) else v  # a StrEnum as its plain value
