"""The unauthenticated flag endpoints (/v2/flags, /v2/flags/explain, /v2/migration/dashboard) never
show the salts or the allow/deny ids, while `voxshift flags show` on the host still shows everything.

The lists are set with the CLI and the salts through FeatureFlags (the CLI has no salt command), on one
tmp data dir (embedded SQLite state store and settings database); the routes are served in-process
from a FeatureFlags loaded from those stores, as `voxshift serve` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from voxshift.api import migration
from voxshift.cli.main import app as cli_app
from voxshift.config import load_settings
from voxshift.core.flags import FlagConfig, PerOperation
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import FlagConfigRepository
from voxshift.stores.state import NamespacedStore, open_state_store

ALLOWED_USER = "vip-user-7f3a91"
DENIED_USER = "blocked-user-c0ffee"
ALLOWED_AGENT = "agent_beta_5e5e5e"
DENIED_AGENT = "agent_noisy_badd0g"
SALTS = PerOperation("stt-salt-Qx81zz", "tts-salt-Wp47yy")
SECRETS = (ALLOWED_USER, DENIED_USER, ALLOWED_AGENT, DENIED_AGENT, SALTS.stt, SALTS.tts)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    for name in os.environ:
        if name.startswith(("VOICE_V2_", "VOXSHIFT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VOXSHIFT_DATA_DIR", out["VOXSHIFT_DATA_DIR"])  # for load_settings below
    return out


def cli(env: dict[str, str], *args: str) -> str:
    hidden: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    result = CliRunner().invoke(cli_app, list(args), env={**hidden, **env})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    proc = subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def set_salts_and_fetch(paths: list[tuple[str, dict[str, str]]]) -> tuple[FlagConfig, list[str]]:
    """Set both salts, then GET each path from the migration routes over the same stores."""
    settings = load_settings()
    raw = open_state_store(settings.resolved_state_url)
    db = await Database.open(settings.resolved_database_url)
    try:
        flags = FeatureFlags(
            NamespacedStore(raw, settings.voice_v2_redis_namespace),
            FlagConfigRepository(db),
            FlagConfig.from_settings(settings),
        )
        await flags.load()
        config = await flags.update(lambda c: replace(c, salt=SALTS), actor="test", reason="reshuffle")
        app = FastAPI()
        app.include_router(migration.router)
        app.state.runtime = SimpleNamespace(flags=flags, metrics=MigrationMetrics(raw))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift") as client:
            texts = []
            for path, params in paths:
                response = await client.get(path, params=params)
                assert response.status_code == 200, response.text
                texts.append(response.text)
        return config, texts
    finally:
        await db.aclose()
        await raw.aclose()


def test_public_flag_endpoints_hide_salts_and_listed_ids(env: dict[str, str]) -> None:
    cli(env, "flags", "set", "--enabled", "--percentage", "30", "--feature", "stt=true", "--reason", "go")
    cli(env, "flags", "allow", ALLOWED_USER, "--reason", "beta tester")
    cli(env, "flags", "allow", "--agent", ALLOWED_AGENT, "--reason", "beta agent")
    cli(env, "flags", "deny", DENIED_USER, "--reason", "complaint")
    cli(env, "flags", "deny", "--agent", DENIED_AGENT, "--reason", "noisy")

    config, (flags_text, explain_text, dashboard_text) = asyncio.run(
        set_salts_and_fetch(
            [
                ("/v2/flags", {}),
                ("/v2/flags/explain", {"user_id": "someone-else", "agent_id": "agent_other"}),
                ("/v2/migration/dashboard", {"hours": "1"}),
            ]
        )
    )
    assert config.allow_users == {ALLOWED_USER} and config.salt == SALTS  # the setup really took

    for text in (flags_text, explain_text, dashboard_text):
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, (leaked, text)

    body = json.loads(flags_text)
    public = body["config"]
    assert public["version"] == config.version and public["enabled"] is True
    assert public["percentages"] == {"stt": 30, "tts": 30}
    assert public["salted"] == {"stt": True, "tts": True}
    assert public["allow_counts"] == {"users": 1, "agents": 1}
    assert public["deny_counts"] == {"users": 1, "agents": 1}
    assert not {"salt", "allow", "deny"} & set(public)

    explained = json.loads(explain_text)
    assert explained["decisions"]["stt"]["reason"] in ("in_cohort", "out_of_cohort")
    assert all(line.endswith("(salted)") for line in explained["explain"]), explained["explain"]

    # The host's operator view is unchanged: everything, salts included.
    shown = json.loads(cli(env, "flags", "show", "--json"))
    assert shown["salt"] == SALTS.to_json()
    assert shown["allow"] == {"users": [ALLOWED_USER], "agents": [ALLOWED_AGENT]}
    assert shown["deny"] == {"users": [DENIED_USER], "agents": [DENIED_AGENT]}
