"""The sunset's phases on the embedded stack: guards from real facts (flags, backups, the legacy's
newest write, the rollout state), the read_only switch through the audited flags, every change of
the sunset state audited, refusals that change nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voxshift.config import Settings
from voxshift.services.sunset.backup import BackupService
from voxshift.services.sunset.open import open_sunset
from voxshift.services.sunset.phases import SUNSET_KEY, SunsetRefused
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import FlagAuditRepository
from voxshift.stores.objects import open_from_settings

OBJECT = "voice/agent_a/user_1/2026/11/30/10/0b7c1a52-8d7e-4b0e-9a51-3d1f2b6c7e11.ogg"


async def _audit(settings: Settings, key: str) -> list[object]:
    db = await Database.open(settings.resolved_database_url)
    try:
        return list(await FlagAuditRepository(db).list_recent(key=key))
    finally:
        await db.aclose()


async def test_phases_run_in_order_behind_their_guards(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    async with open_sunset(settings) as (sunset, legacy):
        await legacy.bucket.storage.ensure_bucket()  # the legacy creates it at start-up
        await legacy.bucket.put(OBJECT, b"OggS" + b"\0" * 60, "audio/mpeg", {"agent-id": "agent_a"})
        plan = {p["phase"]: p for p in await sunset.plan()}
        assert plan["read_only"]["refusals"] == []
        assert plan["data_migration"]["refusals"] == [
            "phase read_only has not completed (it is not_started)",
            "no verified backup: run `voxshift backup create` and `voxshift backup verify ID`",
        ]
        assert "the rollout is" not in " ".join(plan["infrastructure_cleanup"]["refusals"])

        with pytest.raises(SunsetRefused, match="phase read_only has not completed"):
            await sunset.run("data_migration", actor="ops", reason="too early")

        dry = await sunset.run("read_only", actor="ops", reason="try", dry_run=True)
        assert dry.dry_run and not dry.changed and not sunset.flags.config.legacy_read_only
        done = await sunset.run("read_only", actor="ops", reason="week 5")
        assert done.changed and sunset.flags.config.legacy_read_only
        with pytest.raises(SunsetRefused, match="already completed"):
            await sunset.run("read_only", actor="ops", reason="again")

        # A backup taken, then verified: data_migration may run only if the legacy wrote nothing since.
        store = open_from_settings(settings)
        try:
            backups = BackupService(legacy, store)
            manifest = await backups.create()
            assert (await backups.verify(manifest.id))["ok"]
        finally:
            await store.aclose()
        facts = await sunset.facts()
        assert facts.backup_verified_at is not None and facts.last_legacy_write_at is not None
        assert facts.last_legacy_write_at <= facts.backup_verified_at
        assert next(p for p in await sunset.plan() if p["phase"] == "data_migration")["refusals"] == []

        await asyncio.sleep(1.1)  # S3-style whole-second modification times: be clearly later
        await legacy.bucket.put(OBJECT.replace("0b7c", "1b7c"), b"late", "audio/mpeg", {})
        with pytest.raises(SunsetRefused, match="the legacy wrote after the newest verified backup"):
            await sunset.run("data_migration", actor="ops", reason="stale backup", work=_no_work)

    audit = await _audit(settings, SUNSET_KEY)
    assert [a.reason for a in audit] == ["sunset read_only completed: week 5"]  # type: ignore[attr-defined]
    flag_audit = await _audit(settings, "voice_v2")
    assert any("sunset read_only: week 5" in (a.reason or "") for a in flag_audit)  # type: ignore[attr-defined]


async def _no_work(dry_run: bool) -> dict[str, object]:
    raise AssertionError("a refused phase must not run its work")


async def test_cleanup_is_refused_without_a_rollout_validation_or_confirmation(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    async with open_sunset(settings) as (sunset, _):
        with pytest.raises(SunsetRefused) as refused:
            await sunset.run("infrastructure_cleanup", actor="ops", reason="now", work=_no_work)
        message = refused.value.message
        for reason in (
            "phase data_migration has not completed",
            "to voice_v2",
            "no validation has run",
            "needs a person's confirmation",
        ):
            assert reason in message


async def test_cleanup_deletes_only_the_legacy_voice_data_then_retires_the_legacy(tmp_path: Path) -> None:
    from dataclasses import replace as dc_replace

    from voxshift.services.sunset.cleanup import cleanup
    from voxshift.stores.state import open_state_store

    settings = Settings(data_dir=tmp_path)
    raw = open_state_store(settings.resolved_state_url)
    try:
        await raw.set("agent_voice_settings:agent_a", b'{"enabled": true}', ttl_s=3600)
        await raw.set("stt_cache:0123456789abcdef0123456789abcdef", b'{"text": "hi"}', ttl_s=86400)
        await raw.set("voice_daily_stats:agent_a:2026-11-30", b"{}", ttl_s=30 * 86400)
        await raw.set("session:42", b"not voice data")  # another service's key on the same store
        await raw.set("voice_v2:flags:x", b"v2's own")
    finally:
        await raw.aclose()
    async with open_sunset(settings) as (sunset, legacy):
        await legacy.bucket.storage.ensure_bucket()
        await legacy.bucket.put(OBJECT, b"OggS" + b"\0" * 60, "audio/mpeg", {})
        await legacy.bucket.storage.put("user-uploads/photo.jpg", b"\xff\xd8\xff", "image/jpeg")

        dry = await cleanup(legacy, dry_run=True)
        assert (dry["keys"], dry["keys_deleted"], dry["objects"], dry["objects_bytes"]) == (3, 0, 1, 64)
        assert dry["key_families"] == {"agent_voice_settings": 1, "stt_cache": 1, "voice_daily_stats": 1}
        assert dry["other_objects_kept"] == 1 and dry["other_objects_sample"] == ["user-uploads/photo.jpg"]

        # Every guard satisfied: earlier phases done, rollout completed at 100 %, validation clean.
        await sunset._mark("read_only", "completed", actor="t", reason="t", details={})
        await sunset._mark("data_migration", "completed", actor="t", reason="t", details={})
        await sunset.record_validation(True, {}, actor="t")
        await sunset.flags.update(
            lambda c: dc_replace(c.with_percentage(None, 100), enabled=True), actor="t", reason="100%"
        )

        async def completed() -> str:
            return "completed"

        sunset.rollout_state = completed
        with pytest.raises(SunsetRefused, match="confirmation"):
            await sunset.run("infrastructure_cleanup", actor="ops", reason="no yes", work=_no_work)

        async def work(dry_run: bool) -> dict[str, object]:
            return await cleanup(legacy, dry_run=dry_run)

        done = await sunset.run(
            "infrastructure_cleanup", actor="ops", reason="week 6", confirmed=True, work=work
        )
        assert done.details["keys_deleted"] == 3 and done.details["objects_deleted"] == 1
        assert sunset.flags.config.legacy_retired
        assert [k async for k in legacy.keyspace.scan()] == []
        assert [i async for i in legacy.bucket.voice_objects()] == []
        assert [i.key async for i in legacy.bucket.other_objects()] == ["user-uploads/photo.jpg"]
    raw = open_state_store(settings.resolved_state_url)
    try:
        assert await raw.get("session:42") == b"not voice data"
        assert await raw.get("voice_v2:flags:x") == b"v2's own"
    finally:
        await raw.aclose()
