"""The sunset data migration's journal: one row per legacy item, in the settings database.

A row is written only after the item's v2 copy exists, in small batches, each one transaction. So a
row always means "done", and an item without a row is simply checked again on the next run: a kill
at any moment loses at most one uncommitted batch of rows, never an item.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_

from voxshift.stores.db.engine import Database
from voxshift.stores.db.models import SunsetJournalRow, utcnow

_LOOKUP_CHUNK = 200  # keys per IN (...) query: far below every backend's parameter limit


@dataclass(frozen=True)
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
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = list(keys[start : start + _LOOKUP_CHUNK])
            stmt = select(t).where(t.c.store == store, t.c.key.in_(chunk))
            async with self.db.begin() as conn:
                for row in (await conn.execute(stmt)).all():
                    out[row.key] = _entry(row)
        return out

    async def get(self, store: str, key: str) -> JournalEntry | None:
        return (await self.done(store, [key])).get(key)

    async def record(self, entries: Sequence[JournalEntry]) -> int:
        """Insert the rows that are not there yet (one transaction); return how many were new.

        Rows are never overwritten: an item has exactly one outcome, the first one recorded.
        """
        if not entries:
            return 0
        t = SunsetJournalRow.__table__
        now = utcnow()
        async with self.db.begin() as conn:
            wanted = [(e.store, e.key) for e in entries]
            existing = {
                (r.store, r.key)
                for r in (
                    await conn.execute(
                        select(t.c.store, t.c.key).where(tuple_(t.c.store, t.c.key).in_(wanted))
                    )
                ).all()
            }
            rows = [
                {
                    "store": e.store,
                    "key": e.key,
                    "outcome": e.outcome,
                    "reason": e.reason,
                    "v2_key": e.v2_key,
                    "sha256": e.sha256,
                    "bytes": e.bytes,
                    "detail": e.detail,
                    "at": now,
                }
                for e in {(e.store, e.key): e for e in entries}.values()
                if (e.store, e.key) not in existing
            ]
            if rows:
                await conn.execute(insert(SunsetJournalRow), rows)
        return len(rows)

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
