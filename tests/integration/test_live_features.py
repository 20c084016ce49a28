"""Features switched at run time take effect in a running app: caching_enabled, flipped with
FeatureFlags.set_feature (in the app's own process, or from another FeatureFlags on the same stores,
as `voxshift flags set --feature caching=true` does), decides whether the next identical request is
answered from the cache - no restart, the start-up VOICE_V2_FEATURES value is only the default.

Real app (create_app, its lifespan, the embedded SQLite state store and object folder), real engines,
HTTP through the ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from voxshift.api.app import create_app
from voxshift.config import Settings
from voxshift.services.wiring.control import open_flags
from voxshift.services.wiring.runtime import VoiceRuntime

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@dataclass
class App:
    client: httpx.AsyncClient
    runtime: VoiceRuntime
    settings: Settings


@pytest.fixture
async def app(tmp_path: Path, whisper_model_dir: Path) -> AsyncIterator[App]:
    settings = Settings(
        data_dir=tmp_path,
        whisper_model_dir=whisper_model_dir,
        workers=2,
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=100,
        # Caching off at start-up: only the live flag can turn it on.
        voice_v2_features={"stt_enabled": True, "tts_enabled": True, "caching_enabled": False},
        metrics_resolution_s=1,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift", timeout=120) as client:
            yield App(client, application.state.runtime, settings)


async def speak(app: App, text: str = "The cache follows the flag.") -> str:
    """One identical TTS request; returns how the cache answered (X-Voxshift-Cache)."""
    response = await app.client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav", "language": "en"},
        headers={"X-User-Id": "user-live"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Voxshift-System"] == "voice_v2"
    return response.headers["X-Voxshift-Cache"]


async def until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait for ``condition`` on the event loop; the limit only stops a broken test from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def cache_enabled(app: App) -> bool:
    stats = await app.client.get("/v2/cache/stats")
    assert stats.status_code == 200
    enabled: bool = stats.json()["enabled"]
    return enabled


async def test_caching_follows_the_flag_set_in_the_running_process(app: App) -> None:
    runtime = app.runtime
    assert [await speak(app) for _ in range(2)] == ["disabled", "disabled"]
    assert not await cache_enabled(app)

    await runtime.flags.set_feature("caching", True, actor="test", reason="beta phase")
    assert await cache_enabled(app)
    assert [await speak(app) for _ in range(2)] == ["miss", "hit"]

    await runtime.flags.set_feature("caching", False, actor="test", reason="rollback")
    assert await speak(app) == "disabled"  # the stored answer is there, and not used
    assert not await cache_enabled(app)

    # The router counted the real lookups only: one miss, one hit (not the "disabled" requests).
    await runtime.metrics.flush()
    dash = await runtime.metrics.get_migration_dashboard_data(hours=1)
    assert dash["cache_hit_rates"]["tts"] == {"hits": 1, "lookups": 2, "rate": 0.5}
    window = await runtime.metrics.traffic(runtime.metrics.clock() - 600)
    assert (window["tts"].cache_hits, window["tts"].cache_lookups) == (1, 2)
    assert window["tts"].v2.requests == 5


async def test_caching_follows_a_flag_set_by_another_process(app: App) -> None:
    # Another FeatureFlags over the same stores: what `voxshift flags set --feature caching=true` runs.
    async with open_flags(app.settings) as other:
        await other.load()
        await other.set_feature("caching", True, actor="operator", reason="beta phase")
        await until(lambda: app.runtime.v2.caching_enabled)  # the app's follower picked it up
        assert [await speak(app, "Another process switched me.") for _ in range(2)] == ["miss", "hit"]

        await other.set_feature("caching", False, actor="operator", reason="rollback")
        await until(lambda: not app.runtime.v2.caching_enabled)
        assert await speak(app, "Another process switched me.") == "disabled"
