"""Rollout decision benchmark: run with ``.venv/bin/python bench/flags.py``.

The seed's design (M2.1 ``should_use_voice_v2``): md5 bucketing plus an awaited
``SETEX voice_v2_rollout:{user}:{op}`` on every decision, against a real redis-server this script
starts on a free port. voxshift's ``FeatureFlags.decide``: the same bucketing on an in-memory config,
no I/O (the FeatureFlags instance is started on the same Redis, with its poll and subscription
running, as in a server). Figures: per-decision latency (p50/p99, microseconds, timed one call at a
time, timer overhead included), throughput (decisions/s from a tight loop), for repeat users (the
bucket cache hits) and unique users (an md5 per decision); the speed-up is seed mean / voxshift
mean with unique users, the conservative case. Also the in-process propagation latency of a
change between two FeatureFlags over Redis (pub/sub, and the poll alone).

Human-readable lines first; the last line is one JSON object of every figure (plain numbers).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fixtures` is importable from the repo root
sys.path.insert(1, str(ROOT / "src"))

from redis.asyncio import Redis  # noqa: E402

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from voxshift.core.flags import Features, FlagConfig, PerOperation  # noqa: E402
from voxshift.services.flags.service import FeatureFlags  # noqa: E402
from voxshift.stores.db.engine import Database  # noqa: E402
from voxshift.stores.db.repositories import FlagConfigRepository  # noqa: E402
from voxshift.stores.state import NamespacedStore, open_state_store  # noqa: E402

SEED_SECONDS = 2.0
V2_CALLS = 200_000
USERS = [f"user-{i}" for i in range(10_000)]
CONFIG = FlagConfig(enabled=True, features=Features(True, True), percentages=PerOperation(50, 50))
PROPAGATION_ROUNDS = 20


class SeedFeatureFlags:
    """The seed's VoiceV2FeatureFlags.should_use_voice_v2, as written (settings as plain values)."""

    def __init__(
        self, redis_client: Redis, enabled: bool, features: dict[str, bool], percentage: int
    ) -> None:
        self.redis = redis_client
        self.enabled, self.features, self.percentage = enabled, features, percentage
        self.cache_ttl = 300

    async def should_use_voice_v2(self, user_id: str, operation: str) -> bool:
        if not self.enabled:
            return False
        if not self.features.get(f"{operation}_enabled", False):
            return False
        if self.percentage == 0:
            return False
        if self.percentage == 100:
            return True
        user_hash = int(hashlib.md5(user_id.encode()).hexdigest(), 16)
        is_selected = user_hash % 100 < self.percentage
        key = f"voice_v2_rollout:{user_id}:{operation}"
        with warnings.catch_warnings():  # redis-py 8 deprecates SETEX; the seed calls it, so do we
            warnings.simplefilter("ignore", DeprecationWarning)
            await self.redis.setex(key, self.cache_ttl, str(is_selected))
        return is_selected


def summary(name: str, samples_ns: list[int]) -> dict[str, float]:
    us = sorted(s / 1000 for s in samples_ns)
    return {
        f"{name}_us_p50": round(us[len(us) // 2], 3),
        f"{name}_us_p99": round(us[int(len(us) * 0.99)], 3),
        f"{name}_us_mean": round(statistics.fmean(us), 3),
    }


async def bench_seed(redis_url: str) -> dict[str, float]:
    client = Redis.from_url(redis_url)
    seed = SeedFeatureFlags(client, True, {"stt_enabled": True, "tts_enabled": True}, 50)
    for user in USERS[:200]:  # warm-up: connection, server
        await seed.should_use_voice_v2(user, "stt")
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.perf_counter() + SEED_SECONDS
    i = 0
    while time.perf_counter() < deadline:
        start = clock()
        await seed.should_use_voice_v2(USERS[i % len(USERS)], "stt")
        samples.append(clock() - start)
        i += 1
    await client.aclose()
    out = summary("seed_decision", samples)
    out["seed_decisions_per_s"] = round(1e9 / statistics.fmean(samples))
    return out


def bench_decide(flags: FeatureFlags, users: list[str], name: str) -> dict[str, float]:
    decide = flags.decide
    n = len(users)
    for user in users[:1000]:
        decide("stt", user, "agent")
    clock = time.perf_counter_ns
    samples = [0] * n
    for i, user in enumerate(users):
        start = clock()
        decide("stt", user, "agent")
        samples[i] = clock() - start
    out = summary(name, samples)
    begin = time.perf_counter()
    for user in users:
        decide("stt", user, "agent")
    out[f"{name}s_per_s"] = round(n / (time.perf_counter() - begin))
    return out


async def bench_propagation(
    store: Any, repo: FlagConfigRepository, listen: bool, name: str
) -> dict[str, float]:
    writer = FeatureFlags(store, repo, CONFIG, env_explicit=False)
    reader = FeatureFlags(store, repo, CONFIG, listen=listen, env_explicit=False)
    await writer.start(watch=False)
    await reader.start()
    await asyncio.sleep(0.1)  # the subscription is live
    applied = asyncio.Event()
    reader.on_change(lambda old, new: applied.set())
    latencies: list[float] = []
    for i in range(PROPAGATION_ROUNDS):
        applied.clear()
        started = time.perf_counter()
        await writer.set_percentage("stt", 40 + i % 2, actor="bench", reason="propagation")
        await asyncio.wait_for(applied.wait(), 10)
        latencies.append((time.perf_counter() - started) * 1000)
    await reader.stop()
    latencies.sort()
    return {
        f"{name}_ms_p50": round(latencies[len(latencies) // 2], 2),
        f"{name}_ms_max": round(latencies[-1], 2),
    }


async def bench_v2(redis_url: str, tmp: Path) -> dict[str, float]:
    raw = open_state_store(redis_url)
    store = NamespacedStore(raw, "voice_v2")
    db = await Database.open(f"sqlite+aiosqlite:///{tmp / 'settings.db'}")
    repo = FlagConfigRepository(db)
    flags = FeatureFlags(store, repo, CONFIG, env_explicit=False)
    await flags.start()  # poll and subscription running, as in a server
    out: dict[str, float] = {}
    repeat = [USERS[i % len(USERS)] for i in range(V2_CALLS)]
    out |= bench_decide(flags, repeat, "v2_decision_repeat_user")
    unique = [f"unique-{i}" for i in range(V2_CALLS)]
    out |= bench_decide(flags, unique, "v2_decision_unique_user")
    await flags.stop()
    out |= await bench_propagation(store, repo, True, "propagation_pubsub")
    out |= await bench_propagation(store, repo, False, "propagation_poll_only")
    await raw.aclose()
    await db.aclose()
    return out


def main() -> dict[str, float]:
    started = time.perf_counter()
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        figures = asyncio.run(bench_seed(redis.url))
        figures |= asyncio.run(bench_v2(redis.url, Path(tmp)))
    figures["decision_speedup_vs_seed"] = round(
        figures["seed_decision_us_mean"] / figures["v2_decision_unique_user_us_mean"], 1
    )
    figures["decision_speedup_vs_seed_repeat_users"] = round(
        figures["seed_decision_us_mean"] / figures["v2_decision_repeat_user_us_mean"], 1
    )
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(f"{'decision (us)':<34}{'p50':>10}{'p99':>10}{'mean':>10}{'per s':>12}")
    for label, key, rate in (
        ("seed: md5 + SETEX per call", "seed_decision", "seed_decisions_per_s"),
        ("voxshift: repeat users", "v2_decision_repeat_user", "v2_decision_repeat_users_per_s"),
        ("voxshift: unique users", "v2_decision_unique_user", "v2_decision_unique_users_per_s"),
    ):
        cells = "".join(f"{figures[f'{key}_us_{stat}']:>10}" for stat in ("p50", "p99", "mean"))
        print(f"{label:<34}{cells}{figures[rate]:>12}")
    print(f"speed-up vs the seed: {figures['decision_speedup_vs_seed']}x (unique users)")
    pubsub, poll = figures["propagation_pubsub_ms_p50"], figures["propagation_poll_only_ms_p50"]
    print(f"propagation between two FeatureFlags over Redis, p50: pub/sub {pubsub} ms, poll only {poll} ms")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
