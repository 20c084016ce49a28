"""The sunset data migration's journal: one row per legacy item, in the settings database.

A row is written only after the item's v2 copy exists, in small batches, each one transaction. So a
row always means "done", and an item without a row is simply checked again on the next run: a kill
at any moment loses at most one uncommitted batch of rows, never an item.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Dialect

from voxshift.stores.db.engine import Database
from voxshift.stores.db.models import SunsetJournalRow, utcnow

_LOOKUP_CHUNK = 1000  # keys per IN (...) query: far below every backend's parameter limit


def _chunks(keys: Sequence[str]) -> list[list[str]]:
    return [list(keys[i : i + _LOOKUP_CHUNK]) for i in range(0, len(keys), _LOOKUP_CHUNK)]


_INSERT_CHUNK = 500  # rows per INSERT: 4,500 parameters, far below SQLite's 32,766 and asyncpg's 32,767
_COLUMNS = ("store", "key", "outcome", "reason", "v2_key", "sha256", "bytes", "detail", "at")


def _placeholders(dialect: Dialect, first: int, count: int) -> list[str]:
    if dialect.paramstyle == "qmark":
        return ["?"] * count
    if dialect.paramstyle == "numeric_dollar":
        return [f"${i}" for i in range(first, first + count)]
    raise ValueError(f"the sunset journal does not support the {dialect.name!r} database driver")


@functools.cache
def _insert_sql(dialect: Dialect, rows: int) -> str:
    # ON CONFLICT DO NOTHING is the same words in SQLite (3.24+) and PostgreSQL. Many rows per
    # statement: the driver then crosses into the database once per chunk instead of once per row,
    # which matters when another thread (the migration's event loop) is busy with the GIL.
    width = len(_COLUMNS)
    names = ", ".join(f'"{c}"' for c in _COLUMNS)
    marks = _placeholders(dialect, 1, width * rows)
    values = ", ".join("(" + ", ".join(marks[i : i + width]) + ")" for i in range(0, len(marks), width))
    return f'INSERT INTO sunset_journal ({names}) VALUES {values} ON CONFLICT ("store", "key") DO NOTHING'


def _first_of_each(entries: Sequence[JournalEntry]) -> list[JournalEntry]:
    """One entry per (store, key), the first: the rule the database applies across batches."""
    seen: dict[tuple[str, str], JournalEntry] = {}
    for entry in entries:
        seen.setdefault((entry.store, entry.key), entry)
    return list(seen.values())


def _bind(dialect: Dialect, column: str) -> Callable[[Any], Any]:
    """The column type's own conversion of a Python value for this driver (dates, JSON)."""
    col = SunsetJournalRow.__table__.c[column]
    process = col.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


# Not frozen: one is built per legacy item, and a frozen dataclass's __init__ costs 7x a slotted one.
@dataclass(slots=True)
class JournalEntry:
    store: str
    key: str
    outcome: str
    reason: str | None = None
    v2_key: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    detail: Any = None
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "store": self.store,
            "outcome": self.outcome,
            "reason": self.reason,
            "v2_key": self.v2_key,
            "sha256": self.sha256,
            "bytes": self.bytes,
            **({"detail": self.detail} if self.detail is not None else {}),
        }


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(
        row.store, row.key, row.outcome, row.reason, row.v2_key, row.sha256, row.bytes, row.detail, row.at
    )


class SunsetJournal:
    """The journal table, through plain records."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def done(self, store: str, keys: Sequence[str]) -> dict[str, JournalEntry]:
        """The journal rows of those keys that have one."""
        t = SunsetJournalRow.__table__
        out: dict[str, JournalEntry] = {}
        for chunk in _chunks(keys):
            stmt = select(t).where(t.c.store == store, t.c.key.in_(chunk))
            async with self.db.begin() as conn:
                for row in (await conn.execute(stmt)).all():
                    out[row.key] = _entry(row)
        return out

    async def outcomes(self, store: str, keys: Sequence[str]) -> dict[str, str]:
        """key -> outcome for those keys that have a row: what a run needs to skip finished items.

        Driver-level SQL: a run looks up every page, and compiling an expanding IN of a thousand
        parameters each time cost more than the query.
        """
        out: dict[str, str] = {}
        for chunk in _chunks(keys):
            async with self.db.begin() as conn:
                first, *marks = _placeholders(conn.dialect, 1, len(chunk) + 1)
                sql = f'SELECT "key", outcome FROM sunset_journal WHERE store = {first} '
                sql += f'AND "key" IN ({", ".join(marks)})'
                result = await conn.exec_driver_sql(sql, (store, *chunk))
                rows: list[Any] = list(result.all())  # (key, outcome); untyped driver-level rows
                out.update((str(key), str(outcome)) for key, outcome in rows)
        return out

    async def has_rows(self, store: str) -> bool:
        """Whether any item of ``store`` was recorded: a run that starts on none has nothing to skip."""
        t = SunsetJournalRow.__table__
        async with self.db.begin() as conn:
            row = (await conn.execute(select(t.c.key).where(t.c.store == store).limit(1))).first()
        return row is not None

    async def get(self, store: str, key: str) -> JournalEntry | None:
        return (await self.done(store, [key])).get(key)

    async def record(self, entries: Sequence[JournalEntry]) -> None:
        """Insert the rows that are not there yet, in one transaction.

        Rows are never overwritten: an item has exactly one outcome, the first one recorded (the
        database skips a duplicate, so a resumed run needs no lookup before its insert).
        """
        if not entries:
            return
        async with self.db.begin() as conn:
            dialect = conn.dialect
            at = _bind(dialect, "at")(utcnow())
            detail = _bind(dialect, "detail")
            empty = detail(None)
            rows = [
                (
                    e.store,
                    e.key,
                    e.outcome,
                    e.reason,
                    e.v2_key,
                    e.sha256,
                    e.bytes,
                    empty if e.detail is None else detail(e.detail),
                    at,
                )
                for e in _first_of_each(entries)
            ]
            # Plain driver parameters: per-row type processing through the ORM cost more than the
            # insert itself (the migration records a row for every legacy key).
            for start in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[start : start + _INSERT_CHUNK]
                params = tuple(value for row in chunk for value in row)
                await conn.exec_driver_sql(_insert_sql(dialect, len(chunk)), params)

    async def entries(self, *, page: int = 500) -> AsyncIterator[JournalEntry]:
        """Every row, by store and key, a page at a time (keyset pagination: memory stays flat)."""
        t = SunsetJournalRow.__table__
        after: tuple[str, str] | None = None
        while True:
            stmt = select(t).order_by(t.c.store, t.c.key).limit(page)
            if after is not None:
                stmt = stmt.where(tuple_(t.c.store, t.c.key) > after)
            async with self.db.begin() as conn:
                rows = (await conn.execute(stmt)).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < page:
                return
            after = (rows[-1].store, rows[-1].key)

    async def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """{store: {outcome: {"items": n, "bytes": b}}}."""
        t = SunsetJournalRow.__table__
        stmt = select(t.c.store, t.c.outcome, func.count(), func.coalesce(func.sum(t.c.bytes), 0)).group_by(
            t.c.store, t.c.outcome
        )
        out: dict[str, dict[str, dict[str, int]]] = {}
        async with self.db.begin() as conn:
            for store, outcome, count, size in (await conn.execute(stmt)).all():
                out.setdefault(store, {})[outcome] = {"items": int(count), "bytes": int(size)}
        return out
