"""The whole sunset as an operator runs it, on the embedded stack: read_only, a verified backup,
data_migration, a clean validation, the rollout completed at 100 %, infrastructure_cleanup. Then
every legacy item has an outcome, v2 holds the migrated bytes, the legacy's voice data is gone,
everything else is untouched, and the router no longer falls back to legacy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.integration.cli_helpers import run as run_cli
from tests.integration.test_sunset_migrate import (
    OBJECTS,
    UNRELATED_KEYS,
    UNRELATED_OBJECTS,
    Legacy,
    embedded_settings,
    write_rows_file,
)
from voxshift.stores.objects import open_from_settings
from voxshift.stores.state import open_state_store

PLAN = """
interval = "1s"
[[phases]]
name = "production"
percentage = 100
features = ["stt_enabled", "tts_enabled", "caching_enabled", "langgraph_integration"]
min_duration = "1s"
"""


async def cli(env: dict[str, str], *args: str) -> Any:
    return await asyncio.to_thread(run_cli, env, *args)


async def test_the_whole_sunset(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data", write_rows_file(tmp_path / "agent_configs.jsonl"))
    await Legacy(settings, None).populate(short_ttl=False)
    env = {
        "VOXSHIFT_DATA_DIR": str(settings.data_dir),
        "VOXSHIFT_LEGACY_SETTINGS_FILE": str(settings.legacy_settings_file),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    (tmp_path / "plan.toml").write_text(PLAN)

    async def ok(*args: str) -> str:
        result = await cli(env, *args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return str(result.stdout)

    await ok("sunset", "run", "read_only", "-r", "week 5")
    backup = json.loads(await ok("backup", "create", "--json"))
    backup_id = backup["id"]
    await ok("backup", "verify", backup_id)
    await ok("sunset", "run", "data_migration", "-r", "week 5")
    validation = json.loads(await ok("sunset", "validate", "--json"))
    assert validation["clean"] is True

    early = await cli(env, "sunset", "run", "infrastructure_cleanup", "-r", "week 6", "--yes")
    assert early.returncode == 1 and "to voice_v2" in early.stderr  # the rollout is not done yet
    await ok("rollout", "start", "--plan", str(tmp_path / "plan.toml"), "--yes", "-r", "go")
    await ok("rollout", "promote", "--force", "-r", "verified by hand")
    assert json.loads(await ok("rollout", "status", "--json"))["state"] == "completed"

    dry = json.loads(
        await ok("sunset", "run", "infrastructure_cleanup", "-r", "week 6", "--dry-run", "--json")
    )
    assert dry["objects"] == len(OBJECTS) and dry["keys_deleted"] == 0
    done = json.loads(await ok("sunset", "run", "infrastructure_cleanup", "-r", "week 6", "--yes", "--json"))
    assert done["objects_deleted"] == len(OBJECTS) and done["other_objects_kept"] == len(UNRELATED_OBJECTS)
    flags = json.loads(await ok("flags", "show", "--json"))
    assert flags["legacy"] == {"read_only": True, "retired": True}
    status = json.loads(await ok("sunset", "status", "--json"))
    assert {p: s["status"] for p, s in status["phases"].items()} == {
        "read_only": "completed",
        "data_migration": "completed",
        "infrastructure_cleanup": "completed",
    }

    # v2 holds every migrated object; the legacy bucket holds only what was not the voice service's.
    report = json.loads(await ok("sunset", "report", "--json"))
    migrated = [i for i in report["items"] if i["store"] == "s3" and i["outcome"] == "migrated"]
    assert len(migrated) == len(OBJECTS)
    v2 = open_from_settings(settings)
    legacy_bucket = open_from_settings(settings, "voice-files", lifecycle=())
    try:
        bodies = {key: body for key, body, *_ in OBJECTS}
        for item in migrated:
            body, _ = await v2.get(item["v2_key"])
            assert body == bodies[item["key"]]
        assert sorted([i.key async for i in legacy_bucket.list()]) == sorted(UNRELATED_OBJECTS)
    finally:
        await v2.aclose()
        await legacy_bucket.aclose()
    raw = open_state_store(settings.resolved_state_url)
    try:
        for key, value in UNRELATED_KEYS.items():
            assert await raw.get(key) == value
    finally:
        await raw.aclose()
