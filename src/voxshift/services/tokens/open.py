"""The token service wired from the settings: over the configured settings database (the CLI), or
over a database the caller already holds (the server's runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voxshift.config import Settings
from voxshift.services.tokens.service import TokenService
from voxshift.stores.db.engine import Database
from voxshift.stores.db.tokens import TokenRepository


def build_tokens(settings: Settings, database: Database | None) -> TokenService:
    env = settings.admin_token.get_secret_value().strip() if settings.admin_token else None
    return TokenService(TokenRepository(database) if database is not None else None, env_token=env)


@asynccontextmanager
async def open_tokens(settings: Settings) -> AsyncIterator[TokenService]:
    db = await Database.open(settings.resolved_database_url)
    try:
        yield build_tokens(settings, db)
    finally:
        await db.aclose()
