"""HTTP cache-hit latency section of bench/stores.py: a cached answer end to end vs computing it.

Three real `voxshift serve` processes on free ports: caching on (embedded SQLite + local folder),
caching on with Redis as the state store, and caching off (the uncached baseline, same clip, same
text). Latencies are whole HTTP round trips from a keep-alive client, measured here.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server import RunningServer, start_server  # noqa: E402

FEATURES_ON = (
    '{"stt_enabled": true, "tts_enabled": true, "langgraph_integration": false, "caching_enabled": true}'
)
TEXT = "The cache answers this sentence without running the engine again."
HITS = 300
MISSES = 8


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(call: Callable[[], httpx.Response], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def _clip(client: httpx.Client) -> bytes:
    response = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav"}
    )
    response.raise_for_status()
    with wave.open(io.BytesIO(response.content)) as w:  # a real WAV, ~4 s of speech
        assert w.getnframes() > 0
    return response.content


def _stt(client: httpx.Client, wav: bytes, language: str = "en") -> Callable[[], httpx.Response]:
    return lambda: client.post(
        "/v1/audio/transcriptions",
        files={"file": ("clip.wav", wav)},
        data={"model": "whisper-1", "language": language},
    )


def _tts(client: httpx.Client, text: str = TEXT) -> Callable[[], httpx.Response]:
    return lambda: client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "mp3", "language": "en"},
    )


def measure_server(server: RunningServer, wav: bytes | None, cached: bool) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        wav = wav or _clip(client)
        if cached:
            _stt(client, wav)().raise_for_status()  # fill the caches, then only hits
            _tts(client)().raise_for_status()
            for _ in range(20):  # warm the keep-alive connection and the code paths
                _stt(client, wav)()
            stt = _timed(_stt(client, wav), HITS)
            tts = _timed(_tts(client), HITS)
            assert _stt(client, wav)().headers["X-Voxshift-Cache"] == "hit"
        else:
            _stt(client, wav)().raise_for_status()
            stt = _timed(_stt(client, wav), MISSES)
            tts = _timed(_tts(client), MISSES)
        return {"wav": wav, "stt": stt, "tts": tts}


def http_cache_figures(tmp: Path, redis_url: str, whisper_dir: Path) -> dict[str, float]:
    base = {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_dir), "VOXSHIFT_WORKERS": "2"}
    runs: dict[str, dict[str, Any]] = {}
    wav: bytes | None = None
    for name, env, cached in (
        ("uncached", base, False),
        ("sqlite", base | {"VOICE_V2_FEATURES": FEATURES_ON}, True),
        ("redis", base | {"VOICE_V2_FEATURES": FEATURES_ON, "VOXSHIFT_STATE_URL": redis_url}, True),
    ):
        server = start_server(tmp / name, env)
        try:
            runs[name] = measure_server(server, wav, cached)
            wav = runs[name]["wav"]
        finally:
            server.stop()
    figures: dict[str, float] = {}
    print(f"{'HTTP latency ms':<26}{'p50':>10}{'p95':>10}{'n':>6}")
    for name, run in runs.items():
        for op in ("stt", "tts"):
            samples = run[op]
            p50, p95 = statistics.median(samples), _percentile(samples, 0.95)
            label = f"{op}_{'hit_' + name if name != 'uncached' else 'uncached'}"
            print(f"{label:<26}{p50:>10.2f}{p95:>10.2f}{len(samples):>6}")
            figures[f"http_{label}_p50_ms"] = round(p50, 3)
            figures[f"http_{label}_p95_ms"] = round(p95, 3)
    for op in ("stt", "tts"):
        uncached = statistics.median(runs["uncached"][op])
        for name in ("sqlite", "redis"):
            figures[f"http_{op}_hit_{name}_speedup_vs_uncached"] = round(
                uncached / statistics.median(runs[name][op]), 1
            )
            figures[f"http_{op}_hit_{name}_p95_goal_met"] = float(
                figures[f"http_{op}_hit_{name}_p95_ms"] <= 5.0
            )
    return figures
