"""Store benchmarks: run with ``.venv/bin/python bench/stores.py`` (or ``./dev bench``).

Each section is an async function taking the shared ``BenchContext`` (a redis-server this script
starts on a free port, a temp dir) and returning ``{figure name: number}``; ``main()`` runs every
entry of ``SECTIONS`` and prints the merged figures as one JSON object on the very last line.
Human-readable lines go before it. Append a section to ``SECTIONS`` to add figures.

State store section: sequential operations per second from one coroutine (the latency-bound case
a single request sees) for get, set with TTL, incr and a pipelined batch of 100 mixed ops (counted
as 100 ops), then get and incr from 32 concurrent coroutines (``_c32``: many requests sharing one
store), on the embedded SQLite file and on Redis, plus the Redis/SQLite ratios.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fixtures` is importable from the repo root
sys.path.insert(1, str(ROOT / "src"))

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from voxshift.stores.state import Batch, StateStore, open_state_store  # noqa: E402

SECONDS_PER_FIGURE = 1.0
PAYLOAD = b'{"success": true, "text": "' + b"x" * 200 + b'"}'  # about one cached STT result


@dataclass
class BenchContext:
    redis: RedisServer
    tmp: Path


Section = Callable[[BenchContext], Awaitable[dict[str, float]]]


async def ops_per_second(call: Callable[[int], Awaitable[object]], ops_per_call: int = 1) -> float:
    for i in range(20):  # warm-up: connections, statement cache, first file pages
        await call(i)
    done = 0
    start = time.perf_counter()
    deadline = start + SECONDS_PER_FIGURE
    while time.perf_counter() < deadline:
        for _ in range(10):
            await call(done)
            done += 1
    return done * ops_per_call / (time.perf_counter() - start)


async def concurrent_ops_per_second(call: Callable[[int], Awaitable[object]], workers: int) -> float:
    """Total ops/s of ``workers`` coroutines calling at once (many requests sharing one store)."""
    done = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call(done)
            done += 1

    await asyncio.gather(*(call(i) for i in range(workers)))  # warm-up: open the pooled connections
    start = time.perf_counter()
    deadline = start + SECONDS_PER_FIGURE
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - start)


def mixed_batch(i: int) -> Batch:
    batch = Batch()
    for j in range(25):
        key = f"bench:batch:{(i * 25 + j) % 1000}"
        batch.set(key, PAYLOAD, ttl_s=60).get(key).incr("bench:batch:count").hincr("bench:batch:h", "n")
    return batch


async def measure_state_store(store: StateStore) -> dict[str, float]:
    await store.set("bench:get", PAYLOAD)
    return {
        "get": await ops_per_second(lambda i: store.get("bench:get")),
        "set_ttl": await ops_per_second(lambda i: store.set(f"bench:set:{i % 1000}", PAYLOAD, ttl_s=60)),
        "incr": await ops_per_second(lambda i: store.incr("bench:counter")),
        "batch100": await ops_per_second(lambda i: store.execute(mixed_batch(i)), ops_per_call=100),
        "get_c32": await concurrent_ops_per_second(lambda i: store.get("bench:get"), 32),
        "incr_c32": await concurrent_ops_per_second(lambda i: store.incr("bench:counter"), 32),
    }


async def state_store_section(ctx: BenchContext) -> dict[str, float]:
    results: dict[str, dict[str, float]] = {}
    for name, url in (("sqlite", f"sqlite:///{ctx.tmp / 'state.db'}"), ("redis", ctx.redis.url)):
        store = open_state_store(url)
        try:
            await store.ping()
            results[name] = await measure_state_store(store)
        finally:
            await store.aclose()
    figures: dict[str, float] = {}
    print(f"{'state store ops/s':<20}{'sqlite':>12}{'redis':>12}{'redis/sqlite':>14}")
    for op in results["sqlite"]:
        sqlite, redis = results["sqlite"][op], results["redis"][op]
        print(f"{op:<20}{sqlite:>12.0f}{redis:>12.0f}{redis / sqlite:>14.2f}")
        figures[f"state_sqlite_{op}_ops_s"] = round(sqlite, 1)
        figures[f"state_redis_{op}_ops_s"] = round(redis, 1)
        figures[f"state_redis_vs_sqlite_{op}_ratio"] = round(redis / sqlite, 3)
    return figures


async def http_cache_section(ctx: BenchContext) -> dict[str, float]:
    from bench.http_cache import http_cache_figures
    from voxshift.engines.models import ensure_whisper_model

    whisper_dir = ensure_whisper_model(Path.home() / ".cache" / "voxshift-test-models" / "whisper-base")
    # Blocking (servers as subprocesses, a sync client): run it off this section's event loop.
    return await asyncio.to_thread(http_cache_figures, ctx.tmp / "http", ctx.redis.url, whisper_dir)


SECTIONS: list[Section] = [state_store_section, http_cache_section]


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        ctx = BenchContext(redis=redis, tmp=Path(tmp))
        for section in SECTIONS:
            figures.update(asyncio.run(section(ctx)))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
