"""The sunset data migration (issue 12 §4, §5): a populated legacy, migrated, every item accounted for.

On the real stack (Redis, SeaweedFS S3, PostgreSQL) and the embedded one (SQLite state store, local
object folder, a JSON-lines settings file), with the awkward cases of the legacy layout document.
Then the SIGKILL test: the migration as a real process, killed at 20 random moments and resumed,
ends exactly where an uninterrupted run on a copy of the same legacy ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.s3_server import SeaweedS3
from tests.integration.cli_helpers import run as run_cli
from voxshift.api.app import create_app
from voxshift.config import Settings
from voxshift.core.legacy_layout import LEGACY_BUCKET, decode_canonical, value_digest
from voxshift.services.sunset.migrate import MigrationResult, open_journal, open_migration, run_data_migration
from voxshift.services.sunset.migrate_keys import KeyReader, KeyValue
from voxshift.services.sunset.sources import open_bucket
from voxshift.services.wiring.control import open_agent_settings
from voxshift.stores.objects import open_from_settings
from voxshift.stores.state import NamespacedStore, open_state_store

AGENT = "agent_" + "голосовой_помощник_@:." * 4 + "_1a2b3c4d"  # non-ASCII, ':', '@', '.', ~115 characters
ASCII_AGENT = "agent_support_bot_9f8e7d6c"
MIB = 1024 * 1024
OGG = b"OggS\x00\x02" + bytes(range(256)) * 40
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x00" * 2000  # TTS output that is not MP3, under .mp3
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + hashlib.sha256(b"seed").digest() * (6 * MIB // 32 + 7)  # > 5 MiB
UNRELATED_KEYS = {"session:42": b"x", "voice:cache:seed": b"y", "stt_cache": b"w"}
UNRELATED_OBJECTS = {
    "notes/readme.txt": b"hello",
    "voice/not-the-layout.txt": b"no",
    "whatsapp/1/a.ogg": b"o",
}
SHORT = "tts_response_cache:" + ASCII_AGENT + ":u:1767225000"  # expires between the scan and the read
VALID_SETTINGS = {
    "enabled": True,
    "providers": [{"provider": "openai", "stt_config": {"model": "whisper-1"}}],
}


def object_key(agent: str, user: str, ext: str) -> str:
    return f"voice/{agent}/{user}/2026/01/02/03/{uuid.uuid4()}" + (f".{ext}" if ext else "")


def meta(kind: str, filename: str) -> dict[str, str]:
    return {
        "agent-id": ASCII_AGENT,
        "user-id": "12345",
        "original-filename": filename,
        "upload-time": "2026-01-02T03:04:05.678901",
        "custom-type": kind,
    }


# (legacy key, body, metadata, expected v2 extension, expected content type); all were audio/mpeg
TTS_WAV = object_key(ASCII_AGENT, "777", "mp3")
OBJECTS = [
    (object_key(ASCII_AGENT, "12345", "ogg"), OGG, meta("voice_input", "voice_1.ogg"), "ogg", "audio/ogg"),
    (
        object_key(ASCII_AGENT, "12345", "ogg"),
        b"",
        meta("voice_input", "voice.ogg"),
        "",
        "application/octet-stream",
    ),
    (TTS_WAV, WAV, meta("tts_output", "response_1.mp3"), "wav", "audio/wav"),
    (object_key(ASCII_AGENT, "777", ""), MP3, meta("voice_input", "audio"), "mp3", "audio/mpeg"),
]
# A UTF-8 key some other S3 client wrote (minio-py refused non-ASCII ids): an ~115-character agent id
UNICODE_OBJECT = object_key(AGENT, "пользователь", "ogg")
OBJECTS.append((UNICODE_OBJECT, OGG, meta("voice_input", "voice_2.ogg"), "ogg", "audio/ogg"))
GONE = object_key(ASCII_AGENT, "777", "mp3")  # named by a cache entry, never in the bucket


def tts_entry(minio_key: str) -> bytes:
    return json.dumps(
        {"success": True, "file_info": {"minio_key": minio_key}, "response_text": "привет"}
    ).encode()


def settings_rows() -> list[dict[str, Any]]:
    def config(voice: Any) -> dict[str, Any]:
        return {"simple": {"settings": {"voice_settings": voice} if voice is not None else {}}}

    return [
        {"id": AGENT, "name": "голос", "config_json": config(VALID_SETTINGS)},
        {"id": ASCII_AGENT, "name": "bot", "config_json": config({"max_file_size_mb": 500})},  # invalid
        {"id": "agent_x", "name": "x", "config_json": config(None)},
    ]


# key -> (value, ttl seconds or None, expected outcome)
STRING_KEYS: dict[str, tuple[bytes, int | None, str]] = {
    f"agent_voice_settings:{AGENT}": (json.dumps({"enabled": False}).encode(), 3600, "skipped"),  # stale
    "stt_cache:" + "a" * 32: (b'{"success": true, "text": "\xd0\xbf\xd1', 86400, "skipped"),  # corrupt JSON
    "stt_cache:" + "b" * 32: (b"\xff\xfe\x00\x01 not utf-8", 86400, "skipped"),
    f"tts_response_cache:{AGENT}:u:1767225600": (tts_entry(TTS_WAV), 5000, "migrated"),
    f"tts_response_cache:{AGENT}:u:1767225601": (tts_entry(GONE), 5000, "skipped"),
    f"tts_response_cache:{AGENT}:u:1767225602": (b"\xff not json", 5000, "skipped"),
    f"voice_daily_stats:{ASCII_AGENT}:2026-01-02": (b'{"date": "2026-01-02"}', 30 * 86400, "migrated"),
    f"voice_daily_stats:{ASCII_AGENT}:2026-01-03": (b'{"date": "2026-01-03"}', None, "migrated"),
}


@dataclass
class Legacy:
    settings: Settings
    redis_url: str | None  # None: the embedded state store
    s3: Any = None  # a boto3 client on the real stack

    async def populate(self, *, short_ttl: bool = True) -> dict[str, str]:
        """Keys, objects and rows; returns every expected (store:key) -> outcome."""
        expected = {f"redis:{k}": outcome for k, (_, _, outcome) in STRING_KEYS.items()}
        if self.redis_url is None:
            store = open_state_store(self.settings.resolved_state_url)
            try:
                for key, (value, ttl, _) in STRING_KEYS.items():
                    await store.set(key, value, ttl_s=ttl)
                if short_ttl:
                    await store.set(SHORT, tts_entry(TTS_WAV), ttl_s=600)
                for key, value in UNRELATED_KEYS.items():
                    await store.set(key, value)
            finally:
                await store.aclose()
        else:
            async with Redis.from_url(self.redis_url) as r:
                for key, (value, ttl, _) in STRING_KEYS.items():
                    await r.set(key.encode(), value, ex=ttl)
                if short_ttl:
                    await r.set(SHORT, tts_entry(TTS_WAV), ex=600)
                for key, value in UNRELATED_KEYS.items():
                    await r.set(key, value)
                metrics = f"voice_metrics:{AGENT}:stt".encode()
                await r.zadd(metrics, {json.dumps({"n": i}): 1767225600.125 + i for i in range(3)})
                await r.expire(metrics, 7 * 86400)
                await r.zadd(f"voice_rate_limit:{ASCII_AGENT}:u", {"1767225600.5": 1767225600.5})
                await r.expire(f"voice_rate_limit:{ASCII_AGENT}:u", 61)
                await r.hset(f"voice_daily_stats:{ASCII_AGENT}:h", mapping={"total": b"3", "bin": b"\xff"})
            expected[f"redis:voice_metrics:{AGENT}:stt"] = "migrated"
            expected[f"redis:voice_rate_limit:{ASCII_AGENT}:u"] = "skipped"
            expected[f"redis:voice_daily_stats:{ASCII_AGENT}:h"] = "migrated"
        if short_ttl:
            expected[f"redis:{SHORT}"] = "expired"
        await self.put_objects()
        for key, *_ in OBJECTS:
            expected[f"s3:{key}"] = "migrated"
        for key in UNRELATED_OBJECTS:
            expected[f"s3:{key}"] = "untouched"
        expected |= {
            f"settings:{AGENT}": "migrated",
            f"settings:{ASCII_AGENT}": "skipped",
            "settings:agent_x": "skipped",
        }
        return expected

    async def expire_soon(self, key: str) -> None:
        if self.redis_url is None:
            store = open_state_store(self.settings.resolved_state_url)
            try:
                await store.expire(key, 0.2)
            finally:
                await store.aclose()
            return
        async with Redis.from_url(self.redis_url) as r:
            await r.pexpire(key, 200)

    async def put_objects(self) -> None:
        if self.s3 is None:
            store = open_from_settings(self.settings, LEGACY_BUCKET, lifecycle=())
            try:
                await store.ensure_bucket()
                for key, body, metadata, _, _ in OBJECTS:
                    await store.put(key, body, "audio/mpeg", metadata)
                for key, body in UNRELATED_OBJECTS.items():
                    await store.put(key, body, "text/plain")
            finally:
                await store.aclose()
            return
        bucket = legacy_bucket(self.settings)
        for key, body, metadata, _, _ in OBJECTS:
            if len(body) > 5 * MIB:  # what minio-py does above 5 MiB: 5 MiB parts, ETag "<md5>-N"
                up = self.s3.create_multipart_upload(
                    Bucket=bucket, Key=key, ContentType="audio/mpeg", Metadata=metadata
                )
                parts = []
                for n, start in enumerate(range(0, len(body), 5 * MIB), 1):
                    part = self.s3.upload_part(
                        Bucket=bucket,
                        Key=key,
                        PartNumber=n,
                        UploadId=up["UploadId"],
                        Body=body[start : start + 5 * MIB],
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": n})
                self.s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
                )
            else:
                self.s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="audio/mpeg", Metadata=metadata
                )
        for key, body in UNRELATED_OBJECTS.items():
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)


def legacy_bucket(settings: Settings) -> str:
    assert settings.legacy_s3_url is not None
    return settings.legacy_s3_url.split("?")[0][len("s3://") :]


class SlowFirstRead:
    """Makes the short-lived key run out between the scan that saw it and the read, every time: its TTL
    is cut to 200 ms once the scan has returned it (waiting for a real TTL would race the copying)."""

    def __init__(self, inner: KeyReader, legacy: Legacy) -> None:
        self.inner = inner
        self.legacy = legacy

    async def read(self, keys: Sequence[str]) -> list[KeyValue | None]:
        if SHORT in keys:
            await self.legacy.expire_soon(SHORT)
            await asyncio.sleep(0.5)
        return await self.inner.read(keys)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def migrate_in_process(legacy: Legacy, *, slow: bool) -> MigrationResult:
    async with open_migration(legacy.settings) as run:
        if slow:
            run.reader = SlowFirstRead(run.reader, legacy)
        return await run_data_migration(run)


async def journal_state(settings: Settings) -> dict[str, dict[str, Any]]:
    async with open_journal(settings) as journal:
        return {f"{e.store}:{e.key}": e.to_json() async for e in journal.entries()}


async def v2_state(settings: Settings) -> dict[str, Any]:
    """Everything the migration writes on the v2 side: objects (sha256, type, metadata), keys, settings."""
    objects = open_from_settings(settings)
    raw = open_state_store(settings.resolved_state_url)
    out: dict[str, Any] = {}
    try:
        async for info in objects.list("legacy/"):
            body, full = await objects.get(info.key)
            out[f"object:{info.key}"] = (
                hashlib.sha256(body).hexdigest(),
                full.content_type,
                dict(full.metadata),
            )
        v2 = NamespacedStore(raw, settings.voice_v2_redis_namespace)
        for prefix in ("legacy:", "migration:legacy_history:"):
            async for key in v2.scan(prefix):
                out[f"key:{key}"] = (
                    hashlib.sha256(await v2.get(key) or b"").hexdigest(),
                    await v2.ttl(key) is not None,
                )
    finally:
        await objects.aclose()
        await raw.aclose()
    async with open_agent_settings(settings) as agents:
        for stored in await agents.list():
            out[f"settings:{stored.agent_id}"] = stored.settings.to_json()
    return out


async def check_migrated(legacy: Legacy, expected: dict[str, str], result: MigrationResult) -> None:
    settings = legacy.settings
    journal = await journal_state(settings)
    assert {k: v["outcome"] for k, v in journal.items()} == expected  # exactly one outcome per item
    assert sum(s["items"] for o in result.counts.values() for s in o.values()) == len(expected)
    reasons = {k: v["reason"] or "" for k, v in journal.items()}
    assert "md5(size:mime:provider)" in reasons["redis:stt_cache:" + "a" * 32]
    assert "object gone" in reasons[f"redis:tts_response_cache:{AGENT}:u:1767225601"]
    assert (
        "corrupt JSON" in reasons[f"redis:tts_response_cache:{AGENT}:u:1767225602"]
        or "UTF-8" in reasons[f"redis:tts_response_cache:{AGENT}:u:1767225602"]
    )
    assert "max_file_size_mb" in reasons[f"settings:{ASCII_AGENT}"]
    assert "a cache of agent_configs" in reasons[f"redis:agent_voice_settings:{AGENT}"]
    assert journal[f"settings:{AGENT}"]["detail"]["cache"]["status"] == "stale"

    objects = open_from_settings(settings)
    try:
        for key, body, metadata, ext, content_type in OBJECTS:
            row = journal[f"s3:{key}"]
            assert row["v2_key"].startswith("legacy/"), row
            assert row["v2_key"].endswith(f".{ext}" if ext else key.removesuffix(".ogg")[-36:]), row
            v2_body, info = await objects.get(row["v2_key"])
            assert hashlib.sha256(v2_body).hexdigest() == hashlib.sha256(body).hexdigest() == row["sha256"]
            assert info.content_type == content_type, key
            assert info.metadata["original-filename"] == metadata["original-filename"]
            assert info.metadata["kind"] == metadata["custom-type"] and info.metadata["legacy-key"] == key
    finally:
        await objects.aclose()

    raw = open_state_store(settings.resolved_state_url)
    try:
        v2 = NamespacedStore(raw, settings.voice_v2_redis_namespace)
        tts = journal[f"redis:tts_response_cache:{AGENT}:u:1767225600"]
        assert await v2.get(tts["v2_key"]) == STRING_KEYS[tts["key"]][0]
        v2_ttl = await v2.ttl(tts["v2_key"])
        legacy_ttl = await remaining_ttl(legacy, tts["key"])
        assert v2_ttl is not None and legacy_ttl is not None and abs(v2_ttl - legacy_ttl) < 2, (
            v2_ttl,
            legacy_ttl,
        )
        assert v2_ttl < 5000 and v2_ttl > 4900  # the remaining TTL, not a flat 3600
        for row in journal.values():
            if row["store"] == "redis" and row["outcome"] == "migrated" and "history" in row["v2_key"]:
                kind, value = decode_canonical(await v2.get(row["v2_key"]) or b"")
                assert value_digest(kind, value) == row["sha256"]
                assert await v2.ttl(row["v2_key"]) is None
        for key, value in UNRELATED_KEYS.items():  # untouched
            assert await raw.get(key) == value
    finally:
        await raw.aclose()
    async with open_agent_settings(settings) as agents:
        stored = await agents.get(AGENT, fresh=True)
        assert stored is not None and stored.settings.to_json()["enabled"] is True
        assert await agents.get(ASCII_AGENT, fresh=True) is None


async def remaining_ttl(legacy: Legacy, key: str) -> float | None:
    if legacy.redis_url is None:
        store = open_state_store(legacy.settings.resolved_state_url)
        try:
            return await store.ttl(key)
        finally:
            await store.aclose()
    async with Redis.from_url(legacy.redis_url) as r:
        ms = await r.pttl(key)
        return ms / 1000 if ms > 0 else None


async def migrate_twice(legacy: Legacy, expected: dict[str, str]) -> None:
    result = await migrate_in_process(legacy, slow=True)
    await check_migrated(legacy, expected, result)
    before = (await journal_state(legacy.settings), await v2_state(legacy.settings))
    again = await migrate_in_process(legacy, slow=False)
    assert again.counts == {}  # every item has its row: nothing read, nothing written
    assert (await journal_state(legacy.settings), await v2_state(legacy.settings)) == before


@pytest.fixture
def real_legacy(clean_redis: RedisServer, s3_server: SeaweedS3, postgres_url: str, tmp_path: Path) -> Legacy:
    suffix = uuid.uuid4().hex[:8]
    bucket = f"voice-files-{suffix}"
    s3_server.client().create_bucket(Bucket=bucket)
    settings = Settings(
        data_dir=tmp_path,
        state_url=clean_redis.url,
        legacy_redis_url=clean_redis.url,
        storage_url=s3_server.storage_url(),
        storage_access_key=s3_server.access_key,
        storage_secret_key=s3_server.secret_key,
        voice_v2_minio_bucket=f"voice-v2-{suffix}",
        legacy_s3_url=s3_server.storage_url(bucket),
        legacy_s3_access_key=s3_server.access_key,
        legacy_s3_secret_key=s3_server.secret_key,
        legacy_database_url=postgres_url,
    )
    return Legacy(settings, clean_redis.url, s3_server.client())


async def write_pg_rows(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE agent_configs (id text PRIMARY KEY, name text, description text, "
                    "owner_id text, config_json json)"
                )
            )
            for row in settings_rows():
                await conn.execute(
                    text(
                        "INSERT INTO agent_configs (id, name, owner_id, config_json) "
                        "VALUES (:i, :n, 'u1', :c)"
                    ),
                    {"i": row["id"], "n": row["name"], "c": json.dumps(row["config_json"])},
                )
    finally:
        await engine.dispose()


async def test_real_stack(real_legacy: Legacy) -> None:
    assert real_legacy.settings.legacy_database_url is not None
    await write_pg_rows(real_legacy.settings.legacy_database_url)
    expected = await real_legacy.populate()
    await migrate_twice(real_legacy, expected)
    bucket = legacy_bucket(real_legacy.settings)
    for key, body in UNRELATED_OBJECTS.items():  # untouched, and the voice objects are still there
        assert real_legacy.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert real_legacy.s3.get_object(Bucket=bucket, Key=OBJECTS[2][0])["Body"].read() == WAV


def embedded_settings(data_dir: Path, rows_file: Path) -> Settings:
    return Settings(data_dir=data_dir, legacy_settings_file=rows_file)


def write_rows_file(path: Path) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in settings_rows()) + "\n")
    return path


async def test_embedded_stack_cli_resolve_and_redirect(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data", write_rows_file(tmp_path / "agent_configs.jsonl"))
    legacy = Legacy(settings, None)
    expected = await legacy.populate()
    await migrate_twice(legacy, expected)

    env = {
        "VOXSHIFT_DATA_DIR": str(settings.data_dir),
        "VOXSHIFT_LEGACY_SETTINGS_FILE": str(settings.legacy_settings_file),
        "PATH": "/usr/bin:/bin",
    }
    report = await asyncio.to_thread(run_cli, env, "sunset", "report", "--json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert {f"{i['store']}:{i['key']}": i["outcome"] for i in doc["items"]} == expected
    assert all({"key", "store", "outcome", "reason", "v2_key"} <= set(i) for i in doc["items"])
    assert doc["summary"]["s3"]["untouched"]["items"] == len(UNRELATED_OBJECTS)
    journal = await journal_state(settings)
    resolved = await asyncio.to_thread(run_cli, env, "sunset", "resolve", TTS_WAV)
    assert resolved.returncode == 0 and resolved.stdout.strip() == journal[f"s3:{TTS_WAV}"]["v2_key"]
    unknown = await asyncio.to_thread(run_cli, env, "sunset", "resolve", "voice/nope")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "no migrated" in unknown.stderr
    bad = await asyncio.to_thread(run_cli, env, "sunset", "migrate", "--rate", "0")
    assert bad.returncode == 2 and "--rate" in bad.stderr
    dry = await asyncio.to_thread(run_cli, env, "sunset", "migrate", "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["counts"] == {}

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift") as client:
            moved = await client.get(f"/v2/legacy/objects/{TTS_WAV}")
            assert moved.status_code == 307
            served = await client.get(moved.headers["location"])
            assert served.status_code == 200 and served.content == WAV
            assert served.headers["content-type"].startswith("audio/wav")
            unicode_moved = await client.get(f"/v2/legacy/objects/{quote(UNICODE_OBJECT)}")
            assert unicode_moved.status_code == 307
            served = await client.get(unicode_moved.headers["location"])
            assert served.status_code == 200 and served.content == OGG
            missing = await client.get("/v2/legacy/objects/voice/a/b/2026/01/02/03/nope.ogg")
            assert missing.status_code == 404 and "error" in missing.json()


async def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data", write_rows_file(tmp_path / "agent_configs.jsonl"))
    legacy = Legacy(settings, None)
    expected = await legacy.populate(short_ttl=False)
    rate = 40.0
    async with open_migration(settings, dry_run=True, rate=rate) as run:
        result = await run_data_migration(run)
    read = sum(
        s["items"] for store, o in result.counts.items() for outcome, s in o.items() if outcome != "untouched"
    )
    assert result.seconds >= read / rate - 0.1  # the read rate limit held
    counted = {
        (store, outcome): slot["items"] for store, o in result.counts.items() for outcome, slot in o.items()
    }
    assert sum(counted.values()) == len(expected)
    assert counted[("redis", "migrated")] == sum(
        1 for k, v in expected.items() if k.startswith("redis:") and v == "migrated"
    )
    assert await journal_state(settings) == {}
    assert not (settings.data_dir / "objects" / settings.voice_v2_minio_bucket).exists()  # not even created
    raw = open_state_store(settings.resolved_state_url)
    try:
        assert [k async for k in NamespacedStore(raw, settings.voice_v2_redis_namespace).scan("")] == []
    finally:
        await raw.aclose()
    async with open_agent_settings(settings) as agents:
        assert await agents.list() == []

    env = {
        "VOXSHIFT_DATA_DIR": str(settings.data_dir),
        "VOXSHIFT_LEGACY_SETTINGS_FILE": str(settings.legacy_settings_file),
        "PATH": "/usr/bin:/bin",
    }
    dry = await asyncio.to_thread(run_cli, env, "sunset", "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would be (dry run)" in dry.stdout and "migrated" in dry.stdout
    assert "items" in dry.stderr and "\r" not in dry.stderr  # plain progress lines off a terminal
    assert await journal_state(settings) == {}


async def test_a_legacy_that_never_stored_audio_has_nothing_to_migrate(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # the embedded reference legacy, before any voice message
    async with open_migration(settings) as run:
        result = await run_data_migration(run)
    assert result.counts == {}
    assert result.notes == ["legacy bucket 'voice-files' does not exist: no objects"]


# --- killed with SIGKILL at random moments -----------------------------------------------------------

KILLS = 20


async def populate_many(settings: Settings) -> None:
    """A smaller legacy for the kill test, but with every kind of item, and no TTL that could run out."""
    store = open_state_store(settings.legacy_redis_url or settings.resolved_state_url)
    bucket = open_bucket(settings)  # the legacy bucket, through the same adapter the migration reads
    try:
        await bucket.storage.ensure_bucket()
        for n in range(40):
            body = WAV + n.to_bytes(4, "big") if n % 2 else OGG + n.to_bytes(4, "big")
            key = f"voice/{AGENT if n % 3 else ASCII_AGENT}/u{n}/2026/01/02/03/{uuid.UUID(int=n)}.mp3"
            await bucket.put(key, body, "audio/mpeg", meta("tts_output", f"response_{n}.mp3"))
            tts = f"tts_response_cache:{AGENT}:u{n}:{1767225600 + n}"
            await store.set(tts, tts_entry(key), ttl_s=7200 + n)
            await store.set("stt_cache:" + f"{n:032x}", b'{"success": true}', ttl_s=86400)
            stats = f"voice_daily_stats:{ASCII_AGENT}:2026-01-{n % 28 + 1:02d}"
            await store.set(stats, b"{}", ttl_s=30 * 86400)
        for key, body in UNRELATED_OBJECTS.items():
            await bucket.storage.put(key, body, "text/plain")
    finally:
        await bucket.aclose()
        await store.aclose()


def env_of(settings: Settings) -> dict[str, str]:
    """The settings as the environment a `voxshift` process reads them from."""
    names = {
        "data_dir": "VOXSHIFT_DATA_DIR",
        "state_url": "VOXSHIFT_STATE_URL",
        "storage_url": "VOXSHIFT_STORAGE_URL",
        "storage_access_key": "VOXSHIFT_STORAGE_ACCESS_KEY",
        "storage_secret_key": "VOXSHIFT_STORAGE_SECRET_KEY",
        "voice_v2_minio_bucket": "VOICE_V2_MINIO_BUCKET",
        "legacy_redis_url": "VOXSHIFT_LEGACY_REDIS_URL",
        "legacy_s3_url": "VOXSHIFT_LEGACY_S3_URL",
        "legacy_s3_access_key": "VOXSHIFT_LEGACY_S3_ACCESS_KEY",
        "legacy_s3_secret_key": "VOXSHIFT_LEGACY_S3_SECRET_KEY",
        "legacy_database_url": "VOXSHIFT_LEGACY_DATABASE_URL",
        "legacy_settings_file": "VOXSHIFT_LEGACY_SETTINGS_FILE",
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for field, name in names.items():
        value = getattr(settings, field)
        if value is not None:
            env[name] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


def migrate_process(settings: Settings, *rate: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "voxshift.cli", "sunset", "migrate", *rate],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(params=["embedded", "real"])
async def two_copies(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, Settings, float]:
    """Two separate, identical legacies (each with its own v2): one to kill, one to run uninterrupted;
    and the longest delay before a kill (a process on the real stack takes longer to start)."""
    if request.param == "embedded":
        rows = write_rows_file(tmp_path / "agent_configs.jsonl")
        killed = embedded_settings(tmp_path / "killed", rows)
        await populate_many(killed)
        reference = embedded_settings(tmp_path / "reference", rows)
        shutil.copytree(killed.data_dir, reference.data_dir)  # the same legacy data, before any run
        return killed, reference, 2.5
    redis: RedisServer = request.getfixturevalue("clean_redis")
    s3: SeaweedS3 = request.getfixturevalue("s3_server")
    pg_url: str = request.getfixturevalue("postgres_url")
    await write_pg_rows(pg_url)  # only ever read: both copies share it
    copies = []
    for db_index, name in ((1, "killed"), (2, "reference")):
        suffix = f"{name}-{uuid.uuid4().hex[:8]}"
        s3.client().create_bucket(Bucket=f"voice-files-{suffix}")
        redis_url = redis.url.rsplit("/", 1)[0] + f"/{db_index}"
        settings = Settings(
            data_dir=tmp_path / name,
            state_url=redis_url,
            legacy_redis_url=redis_url,
            storage_url=s3.storage_url(),
            storage_access_key=s3.access_key,
            storage_secret_key=s3.secret_key,
            voice_v2_minio_bucket=f"voice-v2-{suffix}",
            legacy_s3_url=s3.storage_url(f"voice-files-{suffix}"),
            legacy_s3_access_key=s3.access_key,
            legacy_s3_secret_key=s3.secret_key,
            legacy_database_url=pg_url,
        )
        await populate_many(settings)
        copies.append(settings)
    return copies[0], copies[1], 5.0


async def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(
    two_copies: tuple[Settings, Settings, float],
) -> None:
    killed, reference, longest = two_copies
    seed = int(os.environ.get("VOXSHIFT_KILL_SEED") or random.SystemRandom().randrange(2**32))
    print(f"SIGKILL test seed: {seed} (set VOXSHIFT_KILL_SEED={seed} to replay)")
    rng = random.Random(seed)
    finished_early = 0
    for _ in range(KILLS):
        # The rate limit stretches the work over many runs' worth of seconds, so kills land inside it.
        proc = migrate_process(killed, "--rate", "8")
        await asyncio.sleep(rng.uniform(0.3, longest))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            finished_early += 1
        await asyncio.to_thread(proc.wait, 30)
    journaled_by_killed_runs = len(await journal_state(killed))
    print(f"{journaled_by_killed_runs} items journaled by the killed runs")
    assert journaled_by_killed_runs > 0  # the killed runs made progress, and it was kept
    assert await asyncio.to_thread(migrate_process(killed).wait, 120) == 0
    assert await asyncio.to_thread(migrate_process(reference).wait, 120) == 0

    got, want = await journal_state(killed), await journal_state(reference)
    # 40 objects, 40 TTS entries, 40 STT entries, 28 daily-stats days, the unrelated objects, 3 rows
    assert len(want) == 40 + 40 + 40 + 28 + len(UNRELATED_OBJECTS) + 3
    assert got == want
    assert await v2_state(killed) == await v2_state(reference)
    print(f"{KILLS} kills, {finished_early} runs had already finished; {len(want)} items")
    assert finished_early <= KILLS - 5  # most kills landed inside a run, not after it
