"""The runtime owns the server's start-up work: the lifecycle sweep of the embedded object store and
the background model load that /readyz waits for."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxshift.api.app import create_app
from voxshift.config import Settings
from voxshift.legacy.base import LoadableLegacy
from voxshift.services.wiring.runtime import VoiceRuntime, open_runtime


def quiet_settings(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(data_dir=tmp_path, workers=1, legacy_backend="none", **fields)


class LoadingLegacy:
    """A stand-in legacy with models of its own to load (like the reference's tiny.en)."""

    def __init__(self, inner: Any, fail: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail = fail
        self.loads = 0

    async def load(self) -> None:
        self.loads += 1
        if self.fail:
            raise RuntimeError("no model here")

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


async def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def counting_sweeps(runtime: VoiceRuntime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sweeps: list[int] = []

    async def sweep(now: Any = None) -> int:
        sweeps.append(1)
        return 0

    monkeypatch.setattr(runtime.backends.objects, "sweep", sweep)
    return sweeps


async def test_sweep_runs_at_start_only_when_asked_and_stops_with_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = await open_runtime(quiet_settings(tmp_path / "cli"))
    cli_sweeps = await counting_sweeps(cli, monkeypatch)
    await cli.start(watch_flags=False)  # what the CLI does: no sweep
    await asyncio.sleep(0.05)
    await cli.aclose()
    assert cli_sweeps == []

    server = await open_runtime(quiet_settings(tmp_path / "server"))
    sweeps = await counting_sweeps(server, monkeypatch)
    await server.start(watch_flags=False, sweep=True)
    try:
        await wait_for(lambda: len(sweeps) == 1)  # once at start, then hourly
    finally:
        await server.aclose()
    assert server._sweeper is None


async def test_preload_loads_the_legacy_then_the_engines_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = await open_runtime(quiet_settings(tmp_path))
    legacy = LoadingLegacy(runtime.legacy, fail=True)  # a failed legacy load does not stop v2's
    assert isinstance(legacy, LoadableLegacy)
    runtime.legacy = legacy
    gate = threading.Event()

    def load_engines() -> None:
        gate.wait(5)
        runtime.engines.loaded = True

    monkeypatch.setattr(runtime.engines, "load", load_engines)
    await runtime.start(watch_flags=False, preload=True)
    try:
        await wait_for(lambda: legacy.loads == 1)
        assert not runtime.engines.loaded  # still loading: /readyz says 503 "loading"
        gate.set()
        await wait_for(lambda: runtime.engines.loaded)
    finally:
        gate.set()
        await runtime.aclose()


async def test_without_preload_the_engines_count_as_ready_at_once(tmp_path: Path) -> None:
    runtime = await open_runtime(quiet_settings(tmp_path))
    await runtime.start(watch_flags=False, preload=False)
    try:
        assert runtime.engines.loaded and runtime._loader is None
    finally:
        await runtime.aclose()


async def test_readyz_says_loading_until_the_models_are_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    settings = quiet_settings(tmp_path, preload_engines=True)
    app = create_app(settings)

    async def ready_status(client: httpx.AsyncClient) -> tuple[int, str]:
        response = await client.get("/readyz")
        return response.status_code, response.json()["status"]

    from voxshift.services.wiring.engines import EngineSet

    def slow_load(self: EngineSet) -> None:
        gate.wait(5)
        self.loaded = True

    monkeypatch.setattr(EngineSet, "load", slow_load)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://v") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert await ready_status(client) == (503, "loading")
            gate.set()
            await wait_for(lambda: app.state.runtime.engines.loaded)
            status, text = await ready_status(client)
            assert status == 200 and text in ("ready", "degraded")
