"""`voxshift metrics` as an operator runs it, on the configured state store (the default SQLite file
or a real redis-server), over metrics flushed by MigrationMetrics the way a server flushes them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.redis_server import RedisServer, free_port
from tests.integration.cli_helpers import run
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.stores.state import open_state_store


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    out["VOICE_V2_ROLLOUT_PERCENTAGE"] = "10"
    out["VOICE_V2_ENABLED"] = "true"  # the dashboard shows the effective rollout: 0 behind the kill switch
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        out["VOXSHIFT_STATE_URL"] = server.url
    return out


def state_url(env: dict[str, str]) -> str:
    return env.get("VOXSHIFT_STATE_URL") or f"sqlite:///{env['VOXSHIFT_DATA_DIR']}/state.db"


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def populate(env: dict[str, str]) -> None:
    """What a server would have flushed: 300 v2 and 900 legacy STT requests, some fallbacks."""

    async def go() -> None:
        store = open_state_store(state_url(env))
        try:
            metrics = MigrationMetrics(store)
            for i in range(300):
                metrics.record_operation("stt", "voice_v2", 400.0 + i, i % 50 != 0, error_type="TimeoutError")
            for i in range(900):
                metrics.record_operation(
                    "stt", "legacy", 300.0 + i % 300, i % 100 != 0, error_type="HTTPError"
                )
            for _ in range(6):
                metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
            metrics.record_total_failure("stt")
            metrics.record_shadow("stt", wer=0.02, v2_ms=400, legacy_ms=300, v2_ok=True, legacy_ok=True)
            for hit in (True, True, True, False):
                metrics.record_cache("stt", hit)
            assert await metrics.flush() == 1212
        finally:
            await store.aclose()

    asyncio.run(go())


def test_metrics_json_shows_what_the_servers_flushed(env: dict[str, str]) -> None:
    populate(env)
    proc = run(env, "metrics", "--hours", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    dash = json.loads(proc.stdout)
    assert dash["window_hours"] == 2
    assert dash["current_rollout_percentage"] == 10.0
    # What each operation really gets: VOICE_V2_FEATURES is unset here, so both features are off.
    assert dash["rollout_percentages"] == {"stt": 0.0, "tts": 0.0}
    assert dash["cache_hit_rates"]["stt"] == {"hits": 3, "lookups": 4, "rate": 0.75}
    assert dash["cache_hit_rates"]["tts"] == {"hits": 0, "lookups": 0, "rate": None}
    assert dash["system_comparison"]["stt"]["requests"] == {"voice_v2": 300, "legacy": 900}
    assert dash["error_rates"]["stt"] == {"voice_v2": 6 / 300, "legacy": 9 / 900}
    assert dash["error_types"]["stt"]["voice_v2"] == {"TimeoutError": 6}
    assert dash["fallback_rates"]["stt"]["fallbacks"] == 6
    assert dash["total_failures"]["stt"] == 1
    assert dash["shadow"]["stt"]["agreement_rate"] == 1.0
    p95 = dash["latency_metrics"]["stt"]["voice_v2"]["p95_ms"]
    exact = sorted(400.0 + i for i in range(300) if i % 50 != 0)[279]  # nearest rank ceil(.95 * 294)
    assert p95 / 1.1 - 0.05 < exact <= p95 + 0.05
    assert dash["system_comparison"]["stt"]["regression"]["status"] in ("healthy", "regression")


def test_metrics_table(env: dict[str, str]) -> None:
    populate(env)
    proc = run(env, "metrics")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "last 24 hour bucket(s)" in out and "rollout 10%" in out
    rows = {tuple(line.split()[:3]) for line in out.splitlines()}
    assert ("stt", "voice_v2", "300") in rows and ("stt", "legacy", "900") in rows
    assert ("tts", "voice_v2", "0") in rows
    assert "TimeoutError 6" in out and "6 (2.00%)" in out  # fallbacks per v2 request
    assert "cache hits" in out and "75.00% of 4" in out
    assert "p95 ms" in out and "verdict" in out


def test_metrics_on_an_empty_store_prints_empty_figures(env: dict[str, str]) -> None:
    proc = run(env, "metrics", "--hours", "168", "--json")
    assert proc.returncode == 0, proc.stderr
    dash = json.loads(proc.stdout)
    assert dash["error_rates"]["stt"] == {"voice_v2": None, "legacy": None}
    assert dash["system_comparison"]["tts"]["regression"]["status"] == "insufficient_data"


@pytest.mark.parametrize("hours", ["0", "169", "abc", "1.5", "-3", ""])
def test_bad_hours_is_one_line_and_exit_2(env: dict[str, str], hours: str) -> None:
    one_line_error(run(env, "metrics", f"--hours={hours}"), 2, "--hours must be a whole number from 1 to 168")


def test_an_unreachable_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env["VOXSHIFT_DATA_DIR"] = str(tmp_path)
    env["VOXSHIFT_STATE_URL"] = f"redis://:secret@127.0.0.1:{free_port()}/0"
    proc = run(env, "metrics", process=True)
    one_line_error(proc, 1, "unavailable")
    assert "secret" not in proc.stderr
    env["VOXSHIFT_STATE_URL"] = "mongodb://x"
    one_line_error(run(env, "metrics"), 2, "VOXSHIFT_STATE_URL")


def test_metrics_as_a_real_process(env: dict[str, str]) -> None:
    populate(env)
    proc = run(env, "metrics", "--json", process=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["system_comparison"]["stt"]["requests"]["voice_v2"] == 300


def test_rollout_shown_is_the_stored_flag_configuration(env: dict[str, str]) -> None:
    # The environment says 10 %; a runtime change to 25 % is what every replica uses, so it is shown.
    changed = run(env, "flags", "set", "--percentage", "25", "--reason", "canary")
    assert changed.returncode == 0, changed.stderr
    proc = run(env, "metrics")
    assert proc.returncode == 0, proc.stderr
    assert "rollout 25% (stt 0%, tts 0%)" in proc.stdout.splitlines()[0]  # both features off
    on = run(env, "flags", "set", "--feature", "stt=true", "--reason", "canary")
    assert on.returncode == 0, on.stderr
    assert "rollout 25% (stt 25%, tts 0%)" in run(env, "metrics").stdout.splitlines()[0]
    killed = run(env, "flags", "kill", "--reason", "incident")
    assert killed.returncode == 0, killed.stderr
    assert "rollout 0% (stt 0%, tts 0%)" in run(env, "metrics").stdout.splitlines()[0]
