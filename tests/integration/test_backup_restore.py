"""Backup that restores (issue 12 §3): populate a legacy, back it up, verify, wipe, restore, compare.

On the real stack (Redis, SeaweedFS S3, PostgreSQL) and on the embedded one (SQLite state store, local
object folder), with the awkward cases of the legacy layout document; unrelated keys and objects sit
beside the voice data and must be neither in the backup nor touched.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.s3_server import SeaweedS3
from tests.integration.cli_helpers import run as run_cli
from voxshift.config import Settings
from voxshift.core.legacy_layout import LEGACY_BUCKET
from voxshift.services.sunset import backup_format as fmt
from voxshift.services.sunset.backup import BackupRefused, BackupService, open_backups
from voxshift.services.sunset.sources import LegacyData
from voxshift.stores.objects import open_from_settings
from voxshift.stores.state import open_state_store

AGENT = "agent_" + "голосовой_помощник_@:." * 4 + "_1a2b3c4d"  # non-ASCII, ~115 characters
ASCII_AGENT = "agent_support_bot_9f8e7d6c"
MIB = 1024 * 1024
OGG = b"OggS\x00\x02" + bytes(range(256)) * 40
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x00" * 2000  # TTS output that is not MP3, under .mp3
BIG = hashlib.sha256(b"seed").digest() * (6 * MIB // 32 + 7)  # > 5 MiB: a multipart upload
UNRELATED_KEYS = {"session:42": b"x", "voice:cache:seed": b"y", "voice_v2:stt:abc": b"z", "stt_cache": b"w"}
UNRELATED_OBJECTS = {
    "notes/readme.txt": b"hello",
    "voice/not-the-layout.txt": b"no",
    "whatsapp/1/a.ogg": b"o",
}


def voice_key(agent: str, user: str, ext: str) -> str:
    return (
        f"voice/{agent}/{user}/2026/01/02/03/{uuid.uuid4()}.{ext}"
        if ext
        else f"voice/{agent}/{user}/2026/01/02/03/{uuid.uuid4()}"
    )


def meta(kind: str, filename: str, **extra: str) -> dict[str, str]:
    return {
        "agent-id": ASCII_AGENT,
        "user-id": "12345",
        "original-filename": filename,
        "upload-time": "2026-01-02T03:04:05.678901",
        "custom-type": kind,
        **extra,
    }


# (key, body, content type, metadata): every object is audio/mpeg, as the legacy wrote them
VOICE_OBJECTS = [
    (voice_key(ASCII_AGENT, "12345", "ogg"), OGG, "audio/mpeg", meta("voice_input", "voice_1.ogg")),
    (voice_key(ASCII_AGENT, "12345", "ogg"), b"", "audio/mpeg", meta("voice_input", "voice.ogg")),
    (
        voice_key(ASCII_AGENT, "777", "mp3"),
        WAV,
        "audio/mpeg",
        meta("tts_output", "response_1.mp3", **{"custom-text_length": "12"}),
    ),
    (voice_key(ASCII_AGENT, "777", ""), BIG, "audio/mpeg", meta("voice_input", "audio")),
]


@dataclass
class Legacy:
    settings: Settings
    redis_url: str | None

    async def write_keys(self) -> None:
        """The legacy's keys, raw bytes and TTLs as its service writes them."""
        settings_json = json.dumps({"enabled": True, "providers": [{"provider": "openai"}], "name": "голос"})
        strings: list[tuple[str, bytes, int | None]] = [
            (f"agent_voice_settings:{AGENT}", settings_json.encode(), 3600),
            ("stt_cache:" + "a" * 32, b'{"success": true, "text": "\xd0\xbf\xd1', 86400),  # corrupt JSON
            ("stt_cache:" + "b" * 32, b"\xff\xfe\x00\x01 not utf-8", 86400),
            (f"tts_response_cache:{AGENT}:user:1767225600", b'{"success": true}', 30),  # short TTL
            (f"voice_daily_stats:{ASCII_AGENT}:2026-01-02", b'{"date": "2026-01-02"}', 30 * 86400),
            (f"voice_daily_stats:{ASCII_AGENT}:2026-01-03", b'{"date": "2026-01-03"}', None),
        ]
        if self.redis_url is None:
            store = open_state_store(self.settings.resolved_state_url)
            try:
                for key, value, ttl in strings:
                    await store.set(key, value, ttl_s=ttl)
                for key, value in UNRELATED_KEYS.items():
                    await store.set(key, value)
            finally:
                await store.aclose()
            return
        async with Redis.from_url(self.redis_url) as r:
            for key, value, ttl in strings:
                await r.set(key.encode(), value, ex=ttl)
            for key, value in UNRELATED_KEYS.items():
                await r.set(key, value)
            metrics = f"voice_metrics:{AGENT}:stt".encode()
            await r.zadd(
                metrics, {json.dumps({"success": True, "n": i}): 1767225600.125 + i for i in range(3)}
            )
            await r.expire(metrics, 7 * 86400)
            await r.zadd(f"voice_rate_limit:{ASCII_AGENT}:user", {"1767225600.5": 1767225600.5})
            await r.expire(f"voice_rate_limit:{ASCII_AGENT}:user", 61)
            await r.hset(f"voice_daily_stats:{ASCII_AGENT}:hash", mapping={"total": b"3", "bin": b"\xff"})


async def snapshot_keys(legacy: LegacyData) -> dict[str, tuple[str, str, int | None]]:
    keys = [k async for k in legacy.keyspace.scan()]
    exports = await legacy.keyspace.export(keys)
    return {e.key: (e.type, e.sha256, e.pttl_ms) for e in exports if e is not None}


async def snapshot_objects(legacy: LegacyData) -> dict[str, tuple[str, str | None, dict[str, str]]]:
    out = {}
    async for info in legacy.bucket.voice_objects():
        body, full = await legacy.bucket.get(info.key)
        out[info.key] = (hashlib.sha256(body).hexdigest(), full.content_type, dict(full.metadata))
    return out


async def wipe(legacy: LegacyData) -> None:
    keys = [k async for k in legacy.keyspace.scan()]
    await legacy.keyspace.delete(keys)
    for key in [i.key async for i in legacy.bucket.voice_objects()]:
        await legacy.bucket.delete(key)


async def round_trip(legacy: Legacy, put_objects: Any) -> None:
    await legacy.write_keys()
    await put_objects()
    async with open_backups(legacy.settings) as backups:
        keys_before = await snapshot_keys(backups.legacy)
        objects_before = await snapshot_objects(backups.legacy)
        assert len(objects_before) == len(VOICE_OBJECTS)
        manifest = await backups.create()
        assert manifest.counts["keys"] == len(keys_before)
        assert manifest.counts["objects"] == len(VOICE_OBJECTS)
        assert manifest.bytes["objects"] == sum(len(b) for _, b, _, _ in VOICE_OBJECTS)
        report = await backups.verify(manifest.id)
        assert report["ok"], report

        recorded = await recorded_ttls(backups, manifest)
        await wipe(backups.legacy)
        assert await snapshot_keys(backups.legacy) == {}
        restore_started = time.monotonic()
        restored = await backups.restore(manifest.id)
        assert restored.counts["keys"] == len(keys_before)
        keys_after = await snapshot_keys(backups.legacy)
        elapsed_ms = (time.monotonic() - restore_started) * 1000

        assert keys_after.keys() == keys_before.keys()
        for key, (kind, digest, ttl) in keys_after.items():
            assert (kind, digest) == keys_before[key][:2], key
            assert (ttl is None) == (recorded[key] is None), key
            if ttl is not None:
                # restored with the TTL left at backup time, less only the time since the restore began
                assert recorded[key] - elapsed_ms - 1 <= ttl <= recorded[key], key
        assert await snapshot_objects(backups.legacy) == objects_before

        with pytest.raises(BackupRefused, match="already holds voice"):  # the target is not empty now
            await backups.restore(manifest.id)
        listed = await backups.list()
        assert [r["id"] for r in listed][-1] == manifest.id and listed[-1]["verified_ok"] is True


async def recorded_ttls(backups: BackupService, manifest: fmt.Manifest) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for chunk in manifest.chunks:
        if chunk.kind == "keys":
            out.update({line["key"]: line["ttl_ms"] for line in await backups.chunk_lines(chunk)})
    return out


@pytest.fixture
def real_legacy(clean_redis: RedisServer, s3_server: SeaweedS3, postgres_url: str, tmp_path: Path) -> Legacy:
    suffix = uuid.uuid4().hex[:8]
    legacy_bucket = f"voice-files-{suffix}"
    s3_server.client().create_bucket(Bucket=legacy_bucket)
    settings = Settings(
        data_dir=tmp_path,
        state_url=clean_redis.url,
        legacy_redis_url=clean_redis.url,
        storage_url=s3_server.storage_url(),
        storage_access_key=s3_server.access_key,
        storage_secret_key=s3_server.secret_key,
        voice_v2_minio_bucket=f"voice-v2-{suffix}",
        legacy_s3_url=s3_server.storage_url(legacy_bucket),
        legacy_s3_access_key=s3_server.access_key,
        legacy_s3_secret_key=s3_server.secret_key,
        legacy_database_url=postgres_url,
    )
    return Legacy(settings, clean_redis.url)


INSERT = "INSERT INTO agent_configs (id, name, owner_id, config_json) VALUES (:i, :n, 'u1', :c)"


async def write_pg_rows(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE agent_configs (id text PRIMARY KEY, name text, description text, "
                    "owner_id text, config_json json, created_at timestamptz DEFAULT now())"
                )
            )
            rows = [
                (
                    AGENT,
                    "голосовой помощник",
                    {"simple": {"settings": {"voice_settings": {"enabled": True}}}},
                ),
                (ASCII_AGENT, "support bot", {"simple": {"settings": {}}}),
            ]
            for agent_id, name, config in rows:
                await conn.execute(
                    text(INSERT),
                    {"i": agent_id, "n": name, "c": json.dumps(config)},
                )
            await conn.execute(
                text("INSERT INTO agent_configs (id, name, config_json) VALUES ('agent_x', 'x', NULL)")
            )
    finally:
        await engine.dispose()


async def test_real_stack_round_trip(real_legacy: Legacy, s3_server: SeaweedS3) -> None:
    assert real_legacy.settings.legacy_database_url is not None
    await write_pg_rows(real_legacy.settings.legacy_database_url)
    bucket = real_legacy.settings.legacy_s3_url.split("?")[0][len("s3://") :]  # type: ignore[union-attr]
    client = s3_server.client()

    async def put_objects() -> None:
        for key, body, content_type, metadata in VOICE_OBJECTS:
            if len(body) > 5 * MIB:  # what minio-py does above 5 MiB: 5 MiB parts, ETag "<md5>-N"
                upload = client.create_multipart_upload(
                    Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata
                )
                parts = []
                for n, start in enumerate(range(0, len(body), 5 * MIB), 1):
                    part = client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        PartNumber=n,
                        UploadId=upload["UploadId"],
                        Body=body[start : start + 5 * MIB],
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": n})
                client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
                )
            else:
                client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata
                )
        for key, body in UNRELATED_OBJECTS.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)

    await round_trip(real_legacy, put_objects)

    async with Redis.from_url(real_legacy.redis_url or "") as r:  # unrelated data untouched
        for key, value in UNRELATED_KEYS.items():
            assert await r.get(key) == value
    for key, body in UNRELATED_OBJECTS.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    async with open_backups(real_legacy.settings) as backups:
        manifest = (await backups.list())[-1]
        assert manifest["counts"]["settings"] == 3
        for unrelated in list(UNRELATED_KEYS) + list(UNRELATED_OBJECTS):
            for chunk in (await backups.manifest(manifest["id"])).chunks:
                assert all(line["key"] != unrelated for line in await backups.chunk_lines(chunk))


async def test_embedded_stack_round_trip(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    legacy = Legacy(settings, None)
    objects = open_from_settings(settings, LEGACY_BUCKET, lifecycle=())

    async def put_objects() -> None:
        await objects.ensure_bucket()
        for key, body, content_type, metadata in VOICE_OBJECTS:
            await objects.put(key, body, content_type, metadata)
        for key, body in UNRELATED_OBJECTS.items():
            await objects.put(key, body, "text/plain")

    try:
        await round_trip(legacy, put_objects)
        for key, body in UNRELATED_OBJECTS.items():
            assert (await objects.get(key))[0] == body
    finally:
        await objects.aclose()
    store = open_state_store(settings.resolved_state_url)
    try:
        for key, value in UNRELATED_KEYS.items():
            assert await store.get(key) == value
    finally:
        await store.aclose()


@pytest.fixture
async def embedded_backup(tmp_path: Path) -> AsyncIterator[tuple[Settings, str]]:
    settings = Settings(data_dir=tmp_path)
    await Legacy(settings, None).write_keys()
    objects = open_from_settings(settings, LEGACY_BUCKET, lifecycle=())
    try:
        await objects.ensure_bucket()
        await objects.put(VOICE_OBJECTS[0][0], OGG, "audio/mpeg", VOICE_OBJECTS[0][3])
    finally:
        await objects.aclose()
    async with open_backups(settings) as backups:
        backup_id = (await backups.create()).id
    yield settings, backup_id


async def test_verify_detects_a_corrupted_item(embedded_backup: tuple[Settings, str]) -> None:
    settings, backup_id = embedded_backup
    store = open_from_settings(settings)
    try:
        await store.put(fmt.body_path(backup_id, 0), OGG[:-1] + b"!", "application/octet-stream")
    finally:
        await store.aclose()
    async with open_backups(settings) as backups:
        report = await backups.verify(backup_id)
        assert not report["ok"] and report["problem_count"] == 1
        assert VOICE_OBJECTS[0][0] in report["problems"][0]
        assert (await backups.list())[-1]["verified_ok"] is False


def env_for(settings: Settings) -> dict[str, str]:
    return {"VOXSHIFT_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}


def test_cli_verify_list_and_refusals(embedded_backup: tuple[Settings, str]) -> None:
    settings, backup_id = embedded_backup
    env = env_for(settings)
    verified = run_cli(env, "backup", "verify", backup_id, "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    listed = run_cli(env, "backup", "list", "--json")
    assert json.loads(listed.stdout)[0]["id"] == backup_id
    no_yes = run_cli(env, "backup", "restore", backup_id)
    assert no_yes.returncode == 2 and no_yes.stderr.count("\n") == 1 and "--yes" in no_yes.stderr
    refused = run_cli(env, "backup", "restore", backup_id, "--yes")  # the legacy still holds its data
    assert (
        refused.returncode == 1
        and "already holds voice" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    dry = run_cli(env, "backup", "restore", backup_id, "--dry-run", "--force", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["counts"]["objects"] == 1
    bad = run_cli(env, "backup", "verify", "not-an-id")
    assert bad.returncode == 2 and "not a backup id" in bad.stderr
    missing = run_cli(env, "backup", "verify", "20200101T000000Z-abcdef")
    assert missing.returncode == 1 and "no manifest" in missing.stderr
