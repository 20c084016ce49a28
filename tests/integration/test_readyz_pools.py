"""/readyz shows the inference pools and turns degraded while one is stalled (issue 9 §1).

A runtime on the embedded defaults; the v2 pool's only worker is blocked and a job waits behind it.
Past VOXSHIFT_POOL_STALL_S with no progress /readyz says "degraded" and names the pool; once the
worker is free again it says "ready". Nothing in the body is a file path.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from fastapi import FastAPI

from voxshift.api import health
from voxshift.config import Settings
from voxshift.services.wiring.runtime import open_runtime


async def test_a_stalled_pool_degrades_readyz_until_it_moves_again(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        workers=1,
        queue_size=4,
        pool_stall_s=0.3,
        preload_engines=False,
        legacy_backend="none",
    )
    runtime = await open_runtime(settings)
    runtime.engines.loaded = True  # no model is needed to look at the pools
    app = FastAPI()
    app.include_router(health.router)
    app.state.runtime = runtime
    gate = threading.Event()
    pool = runtime.engines.pool
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://v") as client:
            body = (await client.get("/readyz")).json()
            assert body["status"] == "ready"
            assert (
                body["pools"]["inference"]["workers"] == 1 and body["pools"]["inference"]["stalled"] is False
            )
            assert str(tmp_path) not in (await client.get("/readyz")).text

            blocked = asyncio.create_task(pool.run(gate.wait, 10.0))
            waiting = asyncio.create_task(pool.run(lambda: "done"))
            await asyncio.sleep(0.6)
            response = await client.get("/readyz")
            body = response.json()
            assert response.status_code == 200  # still serving what it can: degraded, not down
            assert body["status"] == "degraded" and "pool:inference" in body["degraded"], body
            assert body["pools"]["inference"]["queued"] == 1 and body["pools"]["inference"]["stalled"] is True

            gate.set()
            assert await blocked is True and await waiting == "done"
            body = (await client.get("/readyz")).json()
            assert body["status"] == "ready", body
            assert body["pools"]["inference"]["in_flight"] == 0
    finally:
        gate.set()
        await runtime.aclose()
