"""Migration-core benchmark: run with ``.venv/bin/python bench/migration.py`` (or ``./dev bench``).

In one run:

1. Routing decision: the seed's design (md5 bucketing plus ``SETEX voice_v2_rollout:{user}:{op}`` on
   a real redis-server on every call, as ``VoiceV2FeatureFlags.should_use_voice_v2`` does) vs
   voxshift's ``FeatureFlags.decide`` (in-process, no I/O). Goal: >= 40x faster.
2. Router overhead: ``MigrationRouter.transcribe_audio`` / ``synthesize_speech`` in front of a no-op
   backend vs calling that backend directly, with real FeatureFlags and real MigrationMetrics
   recording (its flusher running). Goal: p99 overhead <= 50 us.
3. Metrics: records/s into MigrationMetrics from one process with the flusher running. Goal >= 50k/s.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "src"))

import redis.asyncio as aioredis  # noqa: E402

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from voxshift.config import Settings  # noqa: E402
from voxshift.services.flags.service import FeatureFlags  # noqa: E402
from voxshift.services.metrics.recorder import MigrationMetrics  # noqa: E402
from voxshift.services.migration.router import MigrationRouter  # noqa: E402
from voxshift.services.voice.results import SynthesisResult, TranscriptionResult  # noqa: E402
from voxshift.stores.state import open_state_store  # noqa: E402

USERS = [f"user-{i}" for i in range(10_000)]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. decisions -------------------------------------------------------------------------------
async def seed_decision(client: aioredis.Redis, user_id: str, operation: str, percentage: int) -> bool:
    """VoiceV2FeatureFlags.should_use_voice_v2 from the seed, flags already enabled."""
    user_hash = int(hashlib.md5(user_id.encode()).hexdigest(), 16)
    is_selected = user_hash % 100 < percentage
    await client.set(f"voice_v2_rollout:{user_id}:{operation}", str(is_selected), ex=300)  # SETEX
    return is_selected


async def decision_section(redis_url: str) -> dict[str, float]:
    client = aioredis.Redis.from_url(redis_url)
    for user in USERS[:200]:  # warm the connection
        await seed_decision(client, user, "stt", 30)
    n_seed = 5000
    started = time.perf_counter()
    for i in range(n_seed):
        await seed_decision(client, USERS[i % len(USERS)], "stt", 30)
    seed_us = (time.perf_counter() - started) / n_seed * 1e6
    await client.aclose()

    settings = Settings(
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=30,
        voice_v2_features={"stt_enabled": True, "tts_enabled": True},
    )
    flags = FeatureFlags.from_settings(settings)
    decide = flags.decide
    n = 300_000
    for i in range(20_000):
        decide("stt", USERS[i % len(USERS)], None)
    started = time.perf_counter()
    for i in range(n):
        decide("stt", USERS[i % len(USERS)], None)
    ours_us = (time.perf_counter() - started) / n * 1e6
    # Agreement: both designs put every user in the same cohort.
    agree = all(
        (int(hashlib.md5(u.encode()).hexdigest(), 16) % 100 < 30) == decide("stt", u, None).use_v2
        for u in USERS
    )
    print(f"decision: seed (md5 + SETEX on Redis) {seed_us:.1f} us, voxshift {ours_us:.3f} us")
    return {
        "decision_seed_us": round(seed_us, 2),
        "decision_voxshift_us": round(ours_us, 4),
        "decision_speedup_vs_seed": round(seed_us / ours_us, 1),
        "decision_speedup_goal_met": float(seed_us / ours_us >= 40),
        "decision_cohorts_identical": float(agree),
    }


# --- 2. router overhead ---------------------------------------------------------------------------
class NoopV2:
    """Stands in for VoiceV2Service: answers at once, so only the router's own cost is measured."""

    def __init__(self) -> None:
        self.transcript = TranscriptionResult("ok", 1.0, "en", 1.0, "noop", 0.0, 1.0, ())
        self.speech = SynthesisResult(b"\x00" * 32, "wav", "audio/wav", 0.1, "noop", 0.0, "en")

    async def transcribe(self, audio: bytes, **_: Any) -> TranscriptionResult:
        return self.transcript

    def validate_speech_request(self, text: str, language: str | None, *_: Any) -> str:
        return language or "en"

    async def synthesize(self, text: str, **_: Any) -> SynthesisResult:
        return self.speech


async def router_section(tmp: Path) -> dict[str, float]:
    store = open_state_store(f"sqlite:///{tmp / 'router.db'}")
    metrics = MigrationMetrics(store, flush_interval_s=1.0)
    await metrics.start()
    settings = Settings(
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=100,
        voice_v2_features={"stt_enabled": True, "tts_enabled": True},
    )
    noop = NoopV2()
    router = MigrationRouter(
        noop,  # type: ignore[arg-type]
        noop,  # type: ignore[arg-type]
        FeatureFlags.from_settings(settings),
        metrics,
        v2_budget_s=20.0,
    )
    audio = b"RIFF" + b"\x00" * 1000
    figures: dict[str, float] = {}
    for op in ("stt", "tts"):
        direct: list[float] = []
        routed: list[float] = []
        for round_ in range(2):  # the first round warms up
            direct, routed = [], []
            for i in range(20_000):
                user = USERS[i % len(USERS)]
                t0 = time.perf_counter_ns()
                if op == "stt":
                    await noop.transcribe(audio, language="en")
                else:
                    await noop.synthesize("hello", language="en")
                t1 = time.perf_counter_ns()
                if op == "stt":
                    await router.transcribe_audio(audio, language="en", user_id=user)
                else:
                    await router.synthesize_speech("hello", language="en", user_id=user)
                t2 = time.perf_counter_ns()
                direct.append((t1 - t0) / 1000)
                routed.append((t2 - t1) / 1000)
            del round_
        overhead = [r - d for r, d in zip(routed, direct, strict=True)]
        p50, p99 = statistics.median(overhead), _pct(overhead, 0.99)
        print(
            f"router {op}: direct p50 {statistics.median(direct):.2f} us, routed p50 "
            f"{statistics.median(routed):.2f} us; overhead p50 {p50:.2f} us, p99 {p99:.2f} us"
        )
        figures |= {
            f"router_{op}_direct_p50_us": round(statistics.median(direct), 3),
            f"router_{op}_routed_p50_us": round(statistics.median(routed), 3),
            f"router_{op}_overhead_p50_us": round(p50, 3),
            f"router_{op}_overhead_p99_us": round(p99, 3),
            f"router_{op}_routed_over_direct": round(
                statistics.median(routed) / statistics.median(direct), 2
            ),
            f"router_{op}_overhead_goal_met": float(p99 <= 50.0),
        }
    await metrics.stop()
    await store.aclose()
    figures["router_metrics_lost_records"] = float(metrics.lost_records)
    return figures


# --- 3. metrics recording -------------------------------------------------------------------------
async def metrics_section(redis_url: str) -> dict[str, float]:
    store = open_state_store(redis_url)
    metrics = MigrationMetrics(store, flush_interval_s=1.0)
    await metrics.start()
    n = 0
    started = time.perf_counter()
    deadline = started + 2.0
    while time.perf_counter() < deadline:
        for i in range(1000):
            metrics.record_operation("stt", "voice_v2" if i % 3 else "legacy", 100.0 + i % 500, i % 50 != 0)
        n += 1000
        await asyncio.sleep(0)  # let the flusher run, as a server's event loop would
    elapsed = time.perf_counter() - started
    await metrics.stop()
    await store.aclose()
    rate = n / elapsed
    print(f"metrics: {rate:,.0f} records/s (flusher running, Redis), lost {metrics.lost_records}")
    return {
        "metrics_records_per_s": round(rate, 1),
        "metrics_records_goal_met": float(rate >= 50_000),
        "metrics_lost_records": float(metrics.lost_records),
    }


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        figures |= asyncio.run(decision_section(redis.url))
        figures |= asyncio.run(router_section(Path(tmp)))
        figures |= asyncio.run(metrics_section(redis.url))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
