"""Small SQL helpers the services share (dialect differences stay here)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table, func, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from heron._errors import AlreadyExists


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Iterable[str],
    update: Iterable[str],
    where: Any = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update-columns [WHERE where(excluded)]."""
    if not rows:
        return
    # Imported by name: loading the PostgreSQL dialect costs ~50 ms a SQLite process never needs.
    dialect = importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
    stmt = dialect.insert(table)
    set_ = {col: stmt.excluded[col] for col in update}
    condition = where(table, stmt.excluded) if where is not None else None
    conn.execute(
        stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=condition), rows
    )


def insert_unique(conn: Connection, stmt: Any, what: str, field: str = "name") -> Any:
    """Run an INSERT whose only expected failure is a unique violation: say AlreadyExists."""
    try:
        with conn.begin_nested():
            return conn.execute(stmt)
    except SAIntegrityError as exc:
        raise AlreadyExists(f"{what} already exists", field=field) from exc


def latest_version(
    conn: Connection, version: Column[Any], parent: Column[Any], key: Any
) -> int | None:
    """The highest ``version`` among the rows whose ``parent`` is ``key`` (None if none):
    the latest version of a model or a dataset, and one less than the next."""
    return conn.execute(select(func.max(version)).where(parent == key)).scalar()
