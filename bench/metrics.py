"""Migration metrics benchmark: run with ``.venv/bin/python bench/metrics.py``.

How many metric records one process can take per second while the background flusher pushes
them to a real store: the embedded SQLite file and a redis-server this script starts on a free
port. The recording loop is what the router does per request - a routing decision, the operation
(with a log-normal latency, 2 % errors), a fallback now and then, a shadow comparison for 5 % of
requests - and yields to the event loop every 500 records, so the flusher really runs alongside it
(a request handler awaits I/O far more often than that). Recording alone, without a flusher, is
measured as a reference. Afterwards the stored counts are checked against what was recorded: a
fast number that lost data would be worthless.

The SQLite flush times are inflated here: its store runs SQL on a worker thread that must win the
GIL back from a recording loop that never sleeps (a real server idles between requests); the
records themselves never wait for a flush either way.

Human-readable lines first; the last line is one JSON object of plain numbers.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fixtures` is importable from the repo root
sys.path.insert(1, str(ROOT / "src"))

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from voxshift.services.metrics.recorder import MigrationMetrics  # noqa: E402
from voxshift.stores.state import StateStore, open_state_store  # noqa: E402

SECONDS = 3.0  # per backend: three flushes at the default 1 s interval
GOAL_RECORDS_PER_S = 50_000.0
YIELD_EVERY = 500
LATENCIES = [math.exp(random.Random(1).gauss(math.log(700), 0.6)) for _ in range(4096)]


class TimedStore:
    """The real store, with the duration and size of every batch written down."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.batches: list[tuple[int, float]] = []  # (ops, seconds)

    async def execute(self, batch: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.execute(batch)
        finally:
            self.batches.append((len(batch), time.perf_counter() - started))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record_request(metrics: MigrationMetrics, i: int) -> tuple[int, int]:
    """One routed request's records; returns (records made, of which record_operation calls)."""
    system = "voice_v2" if i % 10 == 0 else "legacy"  # a 10 % rollout
    operation = "stt" if i % 3 else "tts"
    metrics.record_decision(operation, system, "percentage")
    ok = i % 50 != 0
    latency = LATENCIES[i & 4095]
    metrics.record_operation(
        operation, system, latency, ok, provider="whisper", error_type=None if ok else "TimeoutError"
    )
    made, operations = 2, 1
    if not ok and system == "voice_v2":
        metrics.record_fallback(operation, "voice_v2", "legacy", "timeout")
        metrics.record_operation(operation, "legacy", latency, True, provider="legacy")
        made, operations = made + 2, 2
    if i % 20 == 1:
        metrics.record_shadow(
            "stt", wer=0.05, v2_ms=latency, legacy_ms=latency * 1.1, v2_ok=True, legacy_ok=True
        )
        made += 1
    return made, operations


async def run_backend(store: StateStore) -> dict[str, float]:
    timed = TimedStore(store)
    metrics = MigrationMetrics(timed)  # type: ignore[arg-type]
    await metrics.start()
    records = requests = 0
    operations = 0
    started = time.perf_counter()
    deadline = started + SECONDS
    while time.perf_counter() < deadline:
        for _ in range(YIELD_EVERY // 2):
            made, ops = record_request(metrics, requests)
            records += made
            operations += ops
            requests += 1
        await asyncio.sleep(0)  # where a request would await I/O: the flusher gets its turn
    elapsed = time.perf_counter() - started
    await metrics.stop()  # the last flush
    stored = 0
    for operation in ("stt", "tts"):
        for system in ("voice_v2", "legacy"):
            stored += (await metrics.window(operation, system, hours=2)).requests
    flush_ms = [seconds * 1000 for _, seconds in timed.batches]
    return {
        "records_per_s": records / elapsed,
        "records": records,
        "operations_recorded": operations,
        "operations_stored": stored,
        "lost_records": metrics.lost_records,
        "flushes": len(timed.batches),
        "flush_ms_max": max(flush_ms, default=0.0),
        "flush_ms_mean": sum(flush_ms) / len(flush_ms) if flush_ms else 0.0,
        "batch_ops_max": max((ops for ops, _ in timed.batches), default=0),
    }


async def recording_only() -> float:
    """Records/s with no flusher and no store traffic: the cost a request pays, alone."""
    metrics = MigrationMetrics(open_state_store("sqlite:///:memory:"))
    records = 0
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < 1.0:
        for _ in range(1000):
            records += record_request(metrics, i)[0]
            i += 1
    return records / (time.perf_counter() - started)


async def clear(store: StateStore) -> None:
    keys = [key async for key in store.scan("migration:voice_v2:")]
    if keys:
        await store.delete(*keys)


async def measure(url: str) -> dict[str, float]:
    store = open_state_store(url)
    try:
        await store.ping()
        await clear(store)
        return await run_backend(store)
    finally:
        await store.aclose()


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        urls = {"sqlite": f"sqlite:///{Path(tmp) / 'state.db'}", "redis": redis.url}
        results = {name: asyncio.run(measure(url)) for name, url in urls.items()}
    alone = asyncio.run(recording_only())
    print(f"{'migration metrics':<28}{'sqlite':>14}{'redis':>14}")
    for figure in results["sqlite"]:
        sqlite, redis_ = results["sqlite"][figure], results["redis"][figure]
        print(f"{figure:<28}{sqlite:>14.1f}{redis_:>14.1f}")
        for name, value in (("sqlite", sqlite), ("redis", redis_)):
            figures[f"metrics_{name}_{figure}"] = round(float(value), 2)
    print(f"recording alone (no flusher): {alone:.0f} records/s")
    slowest = min(results["sqlite"]["records_per_s"], results["redis"]["records_per_s"])
    complete = all(
        r["operations_stored"] == r["operations_recorded"] and not r["lost_records"] for r in results.values()
    )
    print(f"goal >= {GOAL_RECORDS_PER_S:.0f} records/s, flusher running: {slowest:.0f} (slowest backend)")
    print(f"every recorded operation stored, none lost: {complete}")
    figures["metrics_recording_only_records_per_s"] = round(alone, 1)
    figures["records_per_s"] = round(slowest, 1)
    figures["records_per_s_goal"] = GOAL_RECORDS_PER_S
    figures["records_per_s_goal_met"] = float(slowest >= GOAL_RECORDS_PER_S)
    figures["metrics_all_records_stored"] = float(complete)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
