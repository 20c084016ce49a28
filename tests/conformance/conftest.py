"""Fixtures the settings-database suites share: one run on SQLite (a tmp file), one on a real
PostgreSQL (a new empty database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from voxshift.stores.db.engine import Database, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'settings.db'}"


@pytest_asyncio.fixture(loop_scope="function")
async def db(db_url: str) -> AsyncIterator[Database]:
    """The database at the newest schema."""
    await upgrade(db_url)
    database = Database(db_url)
    yield database
    await database.aclose()
