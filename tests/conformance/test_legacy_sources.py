"""Conformance of the other legacy sources: the settings rows (PostgreSQL, JSON array file, JSON lines
file) and the legacy bucket (local folder, SeaweedFS S3), each suite run against every implementation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.s3_server import SeaweedS3
from voxshift.legacy.data import LegacyBucket, LegacySettingsSource
from voxshift.legacy.data.settings_source import FileSettingsSource, PostgresSettingsSource
from voxshift.stores.objects import LocalObjectStorage, open_object_storage

AGENT = "agent_голос_@:." + "x" * 100 + "_1a2b3c4d"
ROWS: list[dict[str, Any]] = [
    {
        "id": AGENT,
        "name": "голос",
        "description": None,
        "owner_id": "u1",
        "config_json": {
            "simple": {"settings": {"voice_settings": {"enabled": True, "cache_ttl_hours": 500}}}
        },
    },
    {
        "id": "agent_b",
        "name": "b",
        "description": "",
        "owner_id": None,
        "config_json": {"simple": {"settings": {}}},
    },
    {"id": "agent_c", "name": "c", "description": "", "owner_id": "u2", "config_json": None},
    {
        "id": "agent_d",
        "name": "d",
        "description": "",
        "owner_id": "u2",
        "config_json": {"voice_settings": {}, "simple": {"settings": {"voice_settings": [1]}}},
    },
]


CREATE = (
    "CREATE TABLE agent_configs (id text PRIMARY KEY, name text, description text, owner_id text, "
    "config_json json, created_at timestamptz DEFAULT now())"
)
INSERT = (
    "INSERT INTO agent_configs (id, name, description, owner_id, config_json) VALUES (:i, :n, :d, :o, :c)"
)


async def _postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(CREATE))
            for row in ROWS:
                await conn.execute(
                    text(INSERT),
                    {
                        "i": row["id"],
                        "n": row["name"],
                        "d": row["description"],
                        "o": row["owner_id"],
                        "c": json.dumps(row["config_json"]),
                    },
                )
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="function", params=["postgres", "file-array", "file-lines"])
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LegacySettingsSource]:
    src: LegacySettingsSource
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        await _postgres(url)
        src = PostgresSettingsSource(url)
    else:
        path = tmp_path / "agent_configs.json"
        if request.param == "file-array":
            path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
        else:
            path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n", encoding="utf-8")
        src = FileSettingsSource(path)
    try:
        yield src
    finally:
        await src.aclose()


async def test_rows_are_yielded_unvalidated_with_their_problems(source: LegacySettingsSource) -> None:
    assert isinstance(source, LegacySettingsSource)
    rows = {r.agent_id: r async for r in source.rows()}
    assert set(rows) == {r["id"] for r in ROWS}
    first = rows[AGENT]
    assert first.voice_settings == {"enabled": True, "cache_ttl_hours": 500}  # out of range: not our job here
    assert first.problems == () and first.name == "голос" and first.owner_id == "u1"
    assert rows["agent_b"].voice_settings is None and "no voice_settings" in rows["agent_b"].problems[0]
    assert rows["agent_c"].problems == ("config_json is empty",)
    d = rows["agent_d"].problems
    assert any("list, not an object" in p for p in d) and any("top-level" in p for p in d)
    assert set(first.row) >= {"id", "name", "description", "owner_id", "config_json"}


# --- the legacy bucket ----------------------------------------------------------------------------

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
VOICE = f"voice/agent_a/u1/2026/01/02/03/{UUID}.mp3"


@pytest_asyncio.fixture(loop_scope="function", params=["local", "s3"])
async def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LegacyBucket]:
    name = f"voice-files-{uuid.uuid4().hex[:8]}"
    if request.param == "s3":
        server: SeaweedS3 = request.getfixturevalue("s3_server")
        storage = open_object_storage(
            server.storage_url(name),
            name,
            access_key=server.access_key,
            secret_key=server.secret_key,
            lifecycle=(),
        )
    else:
        storage = LocalObjectStorage(tmp_path / "objects", name, signing_key=b"k" * 32, lifecycle=())
    legacy = LegacyBucket(storage)
    try:
        yield legacy
    finally:
        await legacy.aclose()


async def test_a_missing_bucket_holds_no_voice_objects(bucket: LegacyBucket) -> None:
    assert [i async for i in bucket.voice_objects()] == []


async def test_only_layout_keys_are_voice_objects_and_metadata_round_trips(bucket: LegacyBucket) -> None:
    await bucket.storage.ensure_bucket()
    meta = {
        "agent-id": "agent_a",
        "custom-type": "tts_output",
        "custom-text_length": "12",
        "note": "голос =?x",
    }
    await bucket.put(VOICE, b"RIFF....WAVE", "audio/mpeg", meta)
    await bucket.storage.put("voice/readme.txt", b"not voice", "text/plain")
    await bucket.storage.put("user-files/a.png", b"png", "image/png")
    assert [i.key async for i in bucket.voice_objects(page_size=1)] == [VOICE]
    assert sorted([i.key async for i in bucket.other_objects()]) == ["user-files/a.png", "voice/readme.txt"]
    body, info = await bucket.get(VOICE)
    assert body == b"RIFF....WAVE" and info.content_type == "audio/mpeg" and dict(info.metadata) == meta
    with pytest.raises(ValueError, match="not a legacy voice object"):
        await bucket.delete("voice/readme.txt")
    assert await bucket.delete(VOICE)
    assert [i.key async for i in bucket.other_objects()] == ["user-files/a.png", "voice/readme.txt"]
