"""The settings database's schema revision, for `voxshift db current|upgrade`.

Embedded SQLite upgrades itself whenever voxshift opens it; a PostgreSQL database is only ever
changed through :func:`upgrade_schema`, run by an operator. Both functions check the URL's scheme
first, so a bad URL fails before anything is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxshift.stores.db import engine


@dataclass(frozen=True)
class SchemaRevision:
    current: str | None  # None: an empty database
    head: str  # the newest revision this voxshift knows

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def unknown(self) -> bool:
        """Written by a newer voxshift: a revision this one has never heard of."""
        return self.current is not None and self.current not in engine.known_revisions()


async def schema_revision(url: str) -> SchemaRevision:
    engine.normalize_url(url)
    current = await engine.current_revision(url)
    return SchemaRevision(current, engine.head_revision())


async def upgrade_schema(url: str) -> tuple[str | None, str]:
    """(before, after); idempotent: a database already at head is left alone."""
    engine.normalize_url(url)
    before = await engine.current_revision(url)
    if before == engine.head_revision():
        return before, before
    return before, await engine.upgrade(url)
