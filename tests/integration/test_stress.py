"""Mixed traffic on a real `voxshift serve` never wedges it (issue 9 §1, §4, §6).

STT and Russian and English TTS loops run concurrently on two workers, on the seed's defaults
(everything on the reference legacy, which spawns espeak-ng and runs Whisper tiny.en) and with
voice_v2 on for everyone (Whisper base, Piper, espeak-ng). Before the fix a run like this hung the
server within seconds (a fork under uvloop deadlocked in OpenBLAS's atfork handler).

What must hold afterwards: every request got an answer (200, or 503 with Retry-After in the
OpenAI error shape) within its budget, the pools drain to zero in flight, /readyz is "ready", and
a normal request is answered about as fast as before the load. Bounded: ~20 s of load per mode.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import start_server
from tests.load import english_clip, one_request, run_load

pytestmark = pytest.mark.slow

LOAD_S = 20.0
CLIENTS = 6
BUDGET_S = 20.0  # VOXSHIFT_V2_BUDGET_S's default: admission keeps every request inside it
GRACE_S = 10.0  # the rest of a request that started in time (its own service, encoding, HTTP)


async def _time_one(url: str, kind: str, clip: bytes) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        record = await one_request(client, kind, clip, "probe-user", time.monotonic())
    assert record.status == 200, record
    return record.seconds


@pytest.mark.parametrize("mode", ["legacy", "voice_v2"])
def test_mixed_load_never_wedges_the_server(mode: str, tmp_path: Path, whisper_model_dir: Path) -> None:
    clip = english_clip()
    server = start_server(
        tmp_path / mode,
        {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir), "VOXSHIFT_WORKERS": "2"},
        all_on_v2=mode == "voice_v2",
    )
    try:
        # Warm both paths once, then time the requests the server should answer after the load too.
        for kind in ("stt", "tts_ru", "tts_en"):
            asyncio.run(_time_one(server.url, kind, clip))
        before = {kind: asyncio.run(_time_one(server.url, kind, clip)) for kind in ("stt", "tts_ru")}

        report = asyncio.run(
            run_load(
                server.url, clients=CLIENTS, duration_s=LOAD_S, client_timeout_s=BUDGET_S + GRACE_S, clip=clip
            )
        )
        summary = report.summary()
        assert report.hangs == [], summary
        assert summary["ok"] >= 10, summary
        for record in report.records:
            assert record.status in (200, 503), record
            if record.status == 503:
                assert record.retry_after is not None and record.error_code == "overloaded", record
        assert max(r.seconds for r in report.records) < BUDGET_S + GRACE_S, summary
        systems = {r.system for r in report.of(status=200)}
        assert systems == ({"legacy"} if mode == "legacy" else {"voice_v2"}), systems

        deadline = time.monotonic() + 30
        while True:
            ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
            if all(pool["in_flight"] == 0 for pool in ready["pools"].values()):
                break
            assert time.monotonic() < deadline, ready["pools"]
            time.sleep(0.2)
        assert ready["status"] == "ready", ready
        assert all(not pool["stalled"] and pool["abandoned"] == 0 for pool in ready["pools"].values()), ready
        # A normal request after the load is answered in its usual time (a ratio, generous for jitter).
        for kind, seconds in before.items():
            after = asyncio.run(_time_one(server.url, kind, clip))
            assert after <= 3 * seconds + 1.0, (kind, seconds, after)
    finally:
        server.stop()
    assert "Traceback" not in server.log, server.log[-5000:]
