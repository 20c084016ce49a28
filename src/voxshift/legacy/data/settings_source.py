"""LegacySettingsSource: the legacy ``agent_configs`` rows, from PostgreSQL or from an exported file.

Read-only and unvalidated: each row comes with the raw ``voice_settings`` object found at
``config_json.simple.settings.voice_settings`` (the path the legacy orchestrator reads) and the
problems met on the way there. Converting the settings is someone else's job (``core``); a row whose
settings cannot be found is still yielded, so nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError, StoreUnavailable

ROW_COLUMNS = ("id", "name", "description", "owner_id", "config_json")


@dataclass(frozen=True)
class LegacySettingsRow:
    """One ``agent_configs`` row: the raw settings object (or None) and why it may be unusable."""

    agent_id: str
    name: str | None
    owner_id: str | None
    voice_settings: dict[str, Any] | None
    problems: tuple[str, ...]
    row: Mapping[str, Any] = field(default_factory=dict)  # the whole row, JSON-safe, for backups


@runtime_checkable
class LegacySettingsSource(Protocol):
    where: str

    def rows(self) -> AsyncIterator[LegacySettingsRow]: ...

    async def aclose(self) -> None: ...


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value


def settings_row(raw: Mapping[str, Any]) -> LegacySettingsRow:
    """Pick the voice settings out of one row, recording every problem instead of raising."""
    row = {str(k): _json_safe(v) for k, v in raw.items()}
    problems: list[str] = []
    config: Any = row.get("config_json")
    if isinstance(config, str):  # a TEXT column, or a JSON column a driver left serialized
        try:
            config = json.loads(config)
        except ValueError as exc:
            problems.append(f"config_json is not valid JSON ({exc})")
            config = None
    voice: Any = None
    if config is None and not problems:
        problems.append("config_json is empty")
    elif isinstance(config, dict):
        simple = config.get("simple")
        settings = simple.get("settings") if isinstance(simple, dict) else None
        if not isinstance(settings, dict):
            problems.append("config_json has no simple.settings object")
        elif "voice_settings" not in settings:
            problems.append("simple.settings has no voice_settings")
        else:
            voice = settings["voice_settings"]
            if voice is not None and not isinstance(voice, dict):
                problems.append(f"voice_settings is a {type(voice).__name__}, not an object")
                voice = None
        if "voice_settings" in config:  # VoiceConfigMixin's other lookup path (intent_utils.py)
            problems.append("config_json also has a top-level voice_settings, which only intent_utils reads")
    elif config is not None:
        problems.append(f"config_json is a {type(config).__name__}, not an object")
    name, owner = row.get("name"), row.get("owner_id")
    return LegacySettingsRow(
        agent_id=str(row.get("id")),
        name=None if name is None else str(name),
        owner_id=None if owner is None else str(owner),
        voice_settings=voice,
        problems=tuple(problems),
        row=row,
    )


class FileSettingsSource:
    """Rows from a JSON array file, or a JSON lines file (one row object per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file {path}"

    def _objects(self) -> Iterator[tuple[int, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"VOXSHIFT_LEGACY_SETTINGS_FILE {self.path}: cannot read it ({exc})") from None
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text)
            except ValueError as exc:
                raise ConfigError(
                    f"VOXSHIFT_LEGACY_SETTINGS_FILE {self.path}: not a JSON array ({exc})"
                ) from None
            yield from enumerate(rows, 1)
            return
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                raise ConfigError(
                    f"VOXSHIFT_LEGACY_SETTINGS_FILE {self.path}: line {number} is not JSON ({exc})"
                ) from None

    async def rows(self) -> AsyncIterator[LegacySettingsRow]:
        for number, obj in self._objects():
            if not isinstance(obj, dict) or "id" not in obj:
                raise ConfigError(
                    f"VOXSHIFT_LEGACY_SETTINGS_FILE {self.path}: row {number} is not an agent_configs "
                    "object with an id"
                )
            yield settings_row(obj)

    async def aclose(self) -> None:
        return None


def async_pg_url(url: str) -> str:
    """SQLAlchemy's asyncpg form of a PostgreSQL URL (``postgresql://`` is accepted as written by psql)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ConfigError(
            f"invalid configuration: VOXSHIFT_LEGACY_DATABASE_URL={mask_url(url)!r}: expected postgresql://..."
        )
    return f"postgresql+asyncpg://{rest}"


class PostgresSettingsSource:
    """Rows of ``agent_configs`` in the legacy PostgreSQL, streamed in a READ ONLY transaction."""

    def __init__(self, url: str, *, page_size: int = 500) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.where = f"postgresql {mask_url(url)}"
        self._engine = create_async_engine(async_pg_url(url), pool_size=1, max_overflow=0)
        self._page_size = page_size

    async def rows(self) -> AsyncIterator[LegacySettingsRow]:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, OperationalError

        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SET TRANSACTION READ ONLY"))
                result = await conn.stream(
                    text("SELECT * FROM agent_configs ORDER BY id").execution_options(
                        yield_per=self._page_size
                    )
                )
                async for mapping in result.mappings():
                    yield settings_row(dict(mapping))
        except (OSError, OperationalError, DBAPIError) as exc:
            raise StoreUnavailable(f"legacy settings {self.where} failed ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        await self._engine.dispose()
