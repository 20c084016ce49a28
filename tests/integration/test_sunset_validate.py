"""`voxshift sunset validate` (issue 12 §4): after a full migration the legacy and v2 agree item by
item; then one v2 object corrupted, one deleted, a stray one added and a new legacy voice key written
after the migration are each named, the command exits 1 and the recorded validation is not clean.

On the embedded stack (SQLite state store, local folder, a JSON-lines settings file; through the
CLI) and on the real one (Redis, SeaweedFS, PostgreSQL; through the service).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tests.integration.cli_helpers import run as run_cli
from tests.integration.test_sunset_migrate import (
    AGENT,
    OBJECTS,
    TTS_WAV,
    UNRELATED_OBJECTS,
    Legacy,
    embedded_settings,
    journal_state,
    migrate_in_process,
    real_legacy,
    write_pg_rows,
    write_rows_file,
)
from voxshift.config import Settings
from voxshift.services.sunset.open import open_sunset
from voxshift.services.sunset.validate import validate
from voxshift.stores.objects import open_from_settings
from voxshift.stores.state import open_state_store

__all__ = ["real_legacy"]  # the real stack's fixture, shared with the migration tests

NEW_KEY = "stt_cache:" + "c" * 32  # written after the migration: no journal outcome
STRAY = f"legacy/{AGENT}/u/2026/01/02/03/{uuid.uuid4()}.ogg"


async def recorded_validation(settings: Settings) -> dict[str, Any]:
    async with open_sunset(settings) as (sunset, _):
        doc, _version = await sunset.document()
    validation = doc["validation"]
    assert isinstance(validation, dict)
    return validation


async def break_things(legacy: Legacy) -> dict[str, str]:
    """Corrupt, delete, add on the v2 side; write a new legacy key. Returns the v2 keys touched."""
    journal = await journal_state(legacy.settings)
    corrupt = journal[f"s3:{OBJECTS[0][0]}"]["v2_key"]
    deleted = journal[f"s3:{TTS_WAV}"]["v2_key"]
    objects = open_from_settings(legacy.settings)
    try:
        _, info = await objects.get(corrupt)
        await objects.put(corrupt, b"OggS not the legacy bytes", info.content_type, dict(info.metadata))
        assert await objects.delete(deleted)
        await objects.put(STRAY, b"OggS stray", "audio/ogg", {})
    finally:
        await objects.aclose()
    if legacy.redis_url is None:
        store = open_state_store(legacy.settings.resolved_state_url)
        try:
            await store.set(NEW_KEY, b'{"success": true}', ttl_s=86400)
        finally:
            await store.aclose()
    else:
        async with Redis.from_url(legacy.redis_url) as r:
            await r.set(NEW_KEY, b'{"success": true}', ex=86400)
    return {"corrupt": corrupt, "deleted": deleted}


def check_clean(doc: dict[str, Any], *, metrics: bool) -> None:
    assert doc["clean"] is True, json.dumps(doc, indent=1, ensure_ascii=False)
    cats = doc["categories"]
    assert set(cats) == {"settings", "objects", "cache_keys", "metrics"}
    assert cats["objects"]["migrated"] == cats["objects"]["v2"] == len(OBJECTS) == cats["objects"]["legacy"]
    assert cats["settings"]["migrated"] == cats["settings"]["v2"] == 1 and cats["settings"]["legacy"] == 3
    assert cats["cache_keys"]["migrated"] == cats["cache_keys"]["v2"] == 1  # the one honest TTS entry
    assert cats["metrics"]["migrated"] == cats["metrics"]["v2"] == (4 if metrics else 2)
    reasons = {i["key"]: i["reason"] for c in cats.values() for i in c["skipped"]}
    assert "md5(size:mime:provider)" in reasons["stt_cache:" + "a" * 32]  # listed, not a problem
    assert cats["cache_keys"]["not_problems"]["expired"] == 1  # really gone from the legacy
    assert cats["objects"]["not_problems"]["untouched (not a voice object)"] == len(UNRELATED_OBJECTS)


def check_broken(doc: dict[str, Any], touched: dict[str, str]) -> None:
    assert doc["clean"] is False
    objects = doc["categories"]["objects"]
    assert [(i["key"], i["v2_key"]) for i in objects["changed"]] == [(OBJECTS[0][0], touched["corrupt"])]
    assert [(i["key"], i["v2_key"]) for i in objects["missing"]] == [(TTS_WAV, touched["deleted"])]
    assert [i["key"] for i in objects["extra"]] == [STRAY]
    cache = doc["categories"]["cache_keys"]
    assert [i["key"] for i in cache["missing"]] == [NEW_KEY]
    assert "no journal outcome" in cache["missing"][0]["reason"]
    assert not cache["changed"] and not cache["extra"]
    for name in ("settings", "metrics"):
        c = doc["categories"][name]
        assert not (c["missing"] or c["changed"] or c["extra"]), (name, c)


async def test_embedded_stack_through_the_cli(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data", write_rows_file(tmp_path / "agent_configs.jsonl"))
    legacy = Legacy(settings, None)
    await legacy.populate()
    await migrate_in_process(legacy, slow=True)
    env = {
        "VOXSHIFT_DATA_DIR": str(settings.data_dir),
        "VOXSHIFT_LEGACY_SETTINGS_FILE": str(settings.legacy_settings_file),
        "PATH": "/usr/bin:/bin",
    }
    clean = await asyncio.to_thread(run_cli, env, "sunset", "validate", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    check_clean(json.loads(clean.stdout), metrics=False)
    assert (await recorded_validation(settings))["clean"] is True

    touched = await break_things(legacy)
    broken = await asyncio.to_thread(run_cli, env, "sunset", "validate", "--json")
    assert broken.returncode == 1, broken.stderr
    check_broken(json.loads(broken.stdout), touched)
    recorded = await recorded_validation(settings)
    assert recorded["clean"] is False
    assert recorded["summary"]["categories"]["objects"]["extra_keys"] == [STRAY]

    text = await asyncio.to_thread(run_cli, env, "sunset", "validate")
    assert text.returncode == 1 and "NOT clean" in text.stdout
    assert f"extra objects {STRAY}" in text.stdout and f"missing cache_keys {NEW_KEY}" in text.stdout
    assert "\r" not in text.stderr  # no progress bar off a terminal


async def test_real_stack(real_legacy: Legacy) -> None:
    settings = real_legacy.settings
    assert settings.legacy_database_url is not None
    await write_pg_rows(settings.legacy_database_url)
    await real_legacy.populate()
    # Before any migration (no journal, no v2 bucket yet): every legacy voice item is missing.
    before = (await validate(settings)).to_json()
    assert before["clean"] is False
    assert {i["key"] for i in before["categories"]["objects"]["missing"]} == {k for k, *_ in OBJECTS}
    assert all(not c["extra"] and not c["changed"] for c in before["categories"].values())
    assert (await recorded_validation(settings))["clean"] is False
    await migrate_in_process(real_legacy, slow=True)
    steps: list[str] = []
    report = await validate(settings, progress=lambda step, n, size: steps.append(step))
    check_clean(report.to_json(), metrics=True)
    assert {"settings", "objects", "keys", "v2 objects", "v2 keys"} <= set(steps)
    assert (await recorded_validation(settings))["clean"] is True

    touched = await break_things(real_legacy)
    report = await validate(settings)
    check_broken(report.to_json(), touched)
    assert (await recorded_validation(settings))["clean"] is False
