"""Engines, schema revisions and the translation of database failures into voxshift errors.

The schema belongs to Alembic (``migrations/``). Embedded SQLite is upgraded automatically: it is
voxshift's own file. A PostgreSQL database is shared infrastructure, so voxshift never changes its
schema behind an operator's back; start-up refuses with one line instead, and
``voxshift db upgrade`` is the explicit step.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError, StoreUnavailable, VoxshiftError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
URL_VARIABLE = "VOXSHIFT_DATABASE_URL"
EXAMPLES = "sqlite+aiosqlite:///path/voxshift.db or postgresql+asyncpg://user:password@host:5432/db"
CONNECT_TIMEOUT_S = 10.0
# Any constant works; it only has to be the same in every voxshift process sharing the database.
_UPGRADE_LOCK_KEY = 0x766F7873  # "voxs"

# Friendly spellings people paste from other tools, mapped onto the async drivers voxshift ships.
_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalize_url(url: str) -> str:
    """The URL with an async driver; ConfigError naming VOXSHIFT_DATABASE_URL when unusable."""
    scheme, sep, rest = url.partition("://")
    driver = _SCHEMES.get(scheme.lower()) if sep else None
    if driver is None:
        shown = scheme if sep else mask_url(url)
        raise ConfigError(
            f"{URL_VARIABLE}={mask_url(url)!r}: unsupported database {shown!r}; expected {EXAMPLES}"
        )
    normalized = f"{driver}://{rest}"
    try:
        parsed = make_url(normalized)
    except ArgumentError:
        raise ConfigError(f"{URL_VARIABLE}={mask_url(url)!r}: not a valid URL; expected {EXAMPLES}") from None
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        # Every pooled connection would get its own empty in-memory database.
        raise ConfigError(f"{URL_VARIABLE}={mask_url(url)!r}: needs a file path; expected {EXAMPLES}")
    if driver.startswith("postgresql") and not parsed.database:
        raise ConfigError(f"{URL_VARIABLE}={mask_url(url)!r}: names no database; expected {EXAMPLES}")
    return normalized


def is_sqlite(url: str) -> bool:
    return normalize_url(url).startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    normalized = normalize_url(url)
    if not normalized.startswith("sqlite"):
        return None
    database = make_url(normalized).database
    return Path(database) if database else None


def create_engine(url: str) -> AsyncEngine:
    normalized = normalize_url(url)
    kwargs: dict[str, Any] = {}
    path = sqlite_path(normalized)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # the embedded default lives in data_dir
        except OSError as exc:
            raise ConfigError(
                f"cannot create {path.parent} for the settings database: {exc.strerror}"
            ) from None
        # Waiting for a writer beats failing with "database is locked" when the CLI and the
        # server write at the same moment.
        kwargs["connect_args"] = {"timeout": 15}
    else:
        kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        kwargs["pool_pre_ping"] = True
    return create_async_engine(normalized, **kwargs)


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn connection-level failures into StoreUnavailable/ConfigError with the URL masked.

    Statement errors that callers handle (IntegrityError and friends) pass through unchanged.
    """
    try:
        yield
    except VoxshiftError:
        raise
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise StoreUnavailable(f"cannot reach the database at {mask_url(url)}: {reason}") from None
    except DBAPIError as exc:
        translated = _classify(exc, url)
        if translated is None:
            raise
        raise translated from None


def _classify(exc: DBAPIError, url: str) -> VoxshiftError | None:
    if isinstance(exc, IntegrityError):
        return None  # a constraint said no: the caller's business (conflicts, CHECKs)
    where = mask_url(url)
    orig = exc.orig
    text_ = str(orig).strip() if orig is not None else ""
    detail = text_.splitlines()[0] if text_ else type(exc).__name__
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    low = detail.lower()
    if sqlstate.startswith("28") or sqlstate == "3D000":  # bad credentials, no such database
        return ConfigError(f"database {where} refused the connection: {detail} (check {URL_VARIABLE})")
    if sqlstate == "42P01" or "no such table" in low:
        return ConfigError(f"database {where} has no voxshift schema ({detail}): run `voxshift db upgrade`")
    if "unable to open database file" in low:
        return ConfigError(f"cannot open the SQLite database {where}: {detail}")
    if (
        exc.connection_invalidated
        or sqlstate.startswith(("08", "53", "57P"))
        or "database is locked" in low
        or "connection" in low
    ):
        return StoreUnavailable(f"database {where} is unavailable: {detail}")
    return None


class Database:
    """One engine plus the error translation every repository needs; ``aclose()`` when done."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine(self.url)

    @classmethod
    async def open(cls, url: str, *, allow_upgrade: bool | None = None) -> Database:
        """Check (or, for embedded SQLite, bring) the schema to head, then connect."""
        upgrade_ok = default_allow_upgrade(url) if allow_upgrade is None else allow_upgrade
        await ensure_schema(url, allow_upgrade=upgrade_ok)
        return cls(url)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success, rolled back on any error."""
        with translate_errors(self.url):
            async with self.engine.begin() as conn:
                yield conn

    async def aclose(self) -> None:
        await self.engine.dispose()


# --- Alembic ---------------------------------------------------------------------------------------
def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: ConfigParser would treat '%' in a password as
    # interpolation syntax.
    config.attributes["url"] = normalize_url(url) if url else None
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no Alembic revisions packaged"
    return head


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


async def current_revision(url: str) -> str | None:
    """The database's Alembic revision; None for an empty database (or a missing SQLite file)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None  # do not create an empty file just to look at it
    engine = create_engine(url)
    try:
        with translate_errors(url):
            async with engine.connect() as conn:
                return await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()


def _current_sync(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def upgrade(url: str, revision: str = "head") -> str:
    """Run the migrations up to ``revision`` (default head); return the database's revision."""
    engine = create_engine(url)
    config = alembic_config(url)
    try:
        with translate_errors(url):
            # One transaction: on PostgreSQL the DDL is transactional, so a failed migration
            # leaves the previous schema intact.
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_sync, config, revision)
            async with engine.connect() as conn:
                current = await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()
    assert current is not None
    return current


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive advisory lock (flock) on ``path`` for processes on this machine."""
    import asyncio
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _upgrade_sync(conn: Connection, config: Config, revision: str) -> None:
    if conn.dialect.name == "postgresql":
        # Two processes upgrading at once would race on CREATE TABLE; the second waits here,
        # then finds the schema at head and does nothing.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    current = _current_sync(conn)
    if current is not None and current not in known_revisions():
        raise _unknown_revision(conn.engine.url.render_as_string(hide_password=False), current)
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def _unknown_revision(url: str, current: str) -> ConfigError:
    return ConfigError(
        f"database {mask_url(url)} is at revision {current}, which this voxshift does not know "
        f"(it needs {head_revision()}); it was probably upgraded by a newer voxshift: upgrade voxshift"
    )


async def ensure_schema(url: str, *, allow_upgrade: bool) -> str:
    """Make sure the schema is at head: upgrade it (embedded SQLite) or refuse with one line.

    Returns the revision. Raises ConfigError when the database is behind and ``allow_upgrade`` is
    false, or when it carries a revision this voxshift does not know (written by a newer one).
    """
    head = head_revision()
    current = await current_revision(url)
    if current == head:
        return head
    where = mask_url(normalize_url(url))
    if current is not None and current not in known_revisions():
        raise _unknown_revision(url, current)
    if allow_upgrade:
        path = sqlite_path(url)
        if path is None:
            return await upgrade(url)  # PostgreSQL serialises upgrades with an advisory lock
        # SQLite's DDL is not one transaction: replicas starting together on a new file would race
        # on CREATE TABLE. One upgrades under a lock file; the others wait and find it at head.
        async with _file_lock(path.with_name(path.name + ".upgrade.lock")):
            if await current_revision(url) == head:
                return head
            return await upgrade(url)
    raise ConfigError(
        f"database {where} is at revision {current or 'none (empty)'}, this voxshift needs {head}: "
        "run `voxshift db upgrade`"
    )


def default_allow_upgrade(url: str) -> bool:
    """Embedded SQLite upgrades itself; anything else needs `voxshift db upgrade` (what `serve`
    passes to :func:`ensure_schema`)."""
    return is_sqlite(url)


__all__ = [
    "URL_VARIABLE",
    "Database",
    "create_engine",
    "current_revision",
    "default_allow_upgrade",
    "ensure_schema",
    "head_revision",
    "is_sqlite",
    "normalize_url",
    "translate_errors",
    "upgrade",
]
