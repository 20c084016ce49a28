"""MigrationMetrics on the real state stores (a SQLite file and a real redis-server): what a flush
writes (exact counts, sums, TTLs, hour keys), the dashboard numbers, one batch per flush, outages
that lose only the unflushed records, and the Prometheus exposition."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.redis_server import RedisServer
from voxshift.core.stats import LatencyHistogram, bucket_index, nearest_rank
from voxshift.services.metrics import store as ms
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.metrics.rollups import ROLLUP_PREFIX
from voxshift.stores.state import StateStore, open_state_store

HOUR = 498_000  # a fixed unix hour (2026-10): key names are predictable, TTLs are real-time anyway
T0 = HOUR * 3600 + 600.0
WEEK = 604_800


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The real store, with every call it receives written down (an observer, not a fake)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.batch_sizes: list[int] = []

    async def execute(self, batch: Any) -> Any:
        self.calls.append("execute")
        self.batch_sizes.append(len(batch))
        return await self.inner.execute(batch)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        return server.url
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest_asyncio.fixture(loop_scope="function")
async def store(state_url: str) -> AsyncIterator[StateStore]:
    opened = open_state_store(state_url)
    yield opened
    await opened.aclose()


def decoded(fields: dict[str, bytes]) -> dict[str, float]:
    return {k: float(v) for k, v in fields.items()}


async def assert_week_ttl(store: StateStore, key: str) -> None:
    ttl = await store.ttl(key)
    assert ttl is not None and WEEK - 120 < ttl <= WEEK, (key, ttl)


async def metric_keys(store: StateStore) -> list[str]:
    """The seed's hour keys (the rollups beside them have tests of their own:
    tests/integration/test_metrics_traffic.py)."""
    return sorted([key async for key in store.scan(ms.PREFIX) if not key.startswith(ROLLUP_PREFIX)])


async def all_metric_keys(store: StateStore) -> list[str]:
    return sorted([key async for key in store.scan(ms.PREFIX)])


# --- what a flush writes ---------------------------------------------------------------------------


async def test_operations_appear_after_a_flush_with_exact_counts_sums_and_ttls(store: StateStore) -> None:
    metrics = MigrationMetrics(store, clock=Clock())
    v2_ok = [120.0, 250.0, 250.0, 980.5, 1500.0]
    for ms_ in v2_ok:
        metrics.record_operation("stt", "voice_v2", ms_, True, provider="whisper")
    metrics.record_operation("stt", "voice_v2", 30_000.0, False, error_type="TimeoutError")
    metrics.record_operation("stt", "voice_v2", 12.0, False, error_type="TimeoutError")
    metrics.record_operation("stt", "voice_v2", 7.0, False, error_type="ProviderError")
    metrics.record_operation("stt", "legacy", 800.0, True)
    assert await all_metric_keys(store) == []  # nothing reaches the store before a flush

    assert await metrics.flush() == 9
    ops_key = ms.operations_key("stt", "voice_v2", HOUR)
    assert ops_key == f"migration:voice_v2:operations:stt:voice_v2:{HOUR}"  # the seed's key
    ops = decoded(await store.hgetall(ops_key))
    assert ops == {
        "count": 8,
        "successes": 5,
        "errors": 3,
        "total_latency_ms": pytest.approx(sum(v2_ok) + 30_000 + 12 + 7),
        "error_type:TimeoutError": 2,
        "error_type:ProviderError": 1,
    }
    hist = LatencyHistogram.from_fields(await store.hgetall(ms.latency_key("stt", "voice_v2", HOUR)))
    assert hist.count == 5 and hist.sum == pytest.approx(sum(v2_ok))
    assert hist.counts[bucket_index(250.0)] == 2
    assert decoded(await store.hgetall(ms.operations_key("stt", "legacy", HOUR)))["count"] == 1
    keys = await metric_keys(store)
    assert len(keys) == 4
    for key in keys:
        await assert_week_ttl(store, key)

    # A second flush, and a second process writing the same hour, add up (HINCRBY, not SET).
    other = MigrationMetrics(store, clock=Clock())
    metrics.record_operation("stt", "voice_v2", 100.0, True)
    other.record_operation("stt", "voice_v2", 200.0, True)
    assert await metrics.flush() == 1 and await other.flush() == 1
    ops = decoded(await store.hgetall(ops_key))
    assert (ops["count"], ops["successes"]) == (10, 7)
    assert ops["total_latency_ms"] == pytest.approx(sum(v2_ok) + 30_000 + 12 + 7 + 300)
    assert await metrics.flush() == 0  # nothing new: no batch at all


async def test_fallbacks_failures_decisions_and_shadow_keys(store: StateStore) -> None:
    metrics = MigrationMetrics(store, clock=Clock())
    metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
    metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
    metrics.record_fallback("stt", "voice_v2", "legacy", "store_unavailable")
    metrics.record_total_failure("stt")
    metrics.record_decision("stt", "voice_v2", "percentage")
    metrics.record_decision("stt", "legacy", "percentage")
    metrics.record_decision("stt", "legacy", "percentage")
    metrics.record_shadow("stt", wer=0.0, v2_ms=300, legacy_ms=500, v2_ok=True, legacy_ok=True)
    metrics.record_shadow("stt", wer=0.25, v2_ms=400.5, legacy_ms=600, v2_ok=True, legacy_ok=True)
    metrics.record_shadow("stt", wer=None, v2_ms=50, legacy_ms=700, v2_ok=False, legacy_ok=True)
    metrics.record_shadow_dropped("stt")  # Prometheus only: not a record for the store
    assert await metrics.flush() == 10

    fallbacks = decoded(await store.hgetall(f"migration:voice_v2:fallbacks:stt:{HOUR}"))
    assert fallbacks == {
        "count": 3,
        "reason:timeout": 2,
        "reason:store_unavailable": 1,
        "path:voice_v2>legacy": 3,
    }
    assert decoded(await store.hgetall(f"migration:voice_v2:total_failures:stt:{HOUR}")) == {"count": 1}
    decisions = decoded(await store.hgetall(f"migration:voice_v2:decisions:stt:{HOUR}"))
    assert decisions == {"voice_v2:percentage": 1, "legacy:percentage": 2}
    shadow = decoded(await store.hgetall(f"migration:voice_v2:shadow:stt:{HOUR}"))
    assert shadow == {
        "count": 3,
        "v2_successes": 2,
        "legacy_successes": 3,
        "both_ok": 2,
        "wer_count": 2,
        "wer_sum": 0.25,
        "wer_le_0": 1,
        "wer_le_0.5": 1,
        "v2_latency_ms": 750.5,
        "legacy_latency_ms": 1800,
    }
    for key in await metric_keys(store):
        await assert_week_ttl(store, key)


async def test_records_land_in_the_hour_they_happened(store: StateStore) -> None:
    clock = Clock(HOUR * 3600 - 0.001)  # the last millisecond of the previous hour
    metrics = MigrationMetrics(store, clock=clock)
    metrics.record_operation("tts", "voice_v2", 100.0, True)
    clock.now = HOUR * 3600.0  # the first instant of HOUR
    metrics.record_operation("tts", "voice_v2", 200.0, True)
    metrics.record_operation("tts", "voice_v2", 300.0, True)
    await metrics.flush()  # one flush, two hour keys
    assert decoded(await store.hgetall(ms.operations_key("tts", "voice_v2", HOUR - 1)))["count"] == 1
    assert decoded(await store.hgetall(ms.operations_key("tts", "voice_v2", HOUR)))["count"] == 2
    now = HOUR * 3600 + 1800.0
    assert (await metrics.window("tts", "voice_v2", 1, now=now)).requests == 2
    both = await metrics.window("tts", "voice_v2", 2, now=now)
    assert both.requests == 3 and both.latency.sum == pytest.approx(600.0)
    later = await metrics.window("tts", "voice_v2", 1, now=now + 3600)
    assert later.requests == 0 and later.latency.count == 0
    with pytest.raises(ValueError):
        await metrics.window("tts", "voice_v2", 0, now=now)


# --- the dashboard ---------------------------------------------------------------------------------


async def test_dashboard_numbers_match_what_was_recorded(store: StateStore) -> None:
    rng = random.Random(42)
    clock = Clock()
    rollout: list[float] = [10.0]
    metrics = MigrationMetrics(store, clock=clock, rollout_source=lambda: rollout[0])
    sent: dict[str, list[float]] = {"voice_v2": [], "legacy": []}
    errors = {"voice_v2": 0, "legacy": 0}
    for system, n, error_rate, median in (("voice_v2", 600, 0.03, 900.0), ("legacy", 2400, 0.01, 700.0)):
        for i in range(n):
            clock.now = T0 - 3600 * (i % 3)  # spread over three hours
            latency = rng.lognormvariate(math.log(median), 0.5)
            ok = rng.random() >= error_rate
            metrics.record_operation("stt", system, latency, ok, provider="p")
            if ok:
                sent[system].append(latency)
            else:
                errors[system] += 1
    for _ in range(9):
        metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
    metrics.record_total_failure("stt")
    metrics.record_shadow("stt", wer=0.05, v2_ms=1, legacy_ms=2, v2_ok=True, legacy_ok=True)
    metrics.record_shadow("stt", wer=0.3, v2_ms=1, legacy_ms=2, v2_ok=True, legacy_ok=True)
    await metrics.flush()

    dash = await metrics.get_migration_dashboard_data(hours=24, now=T0)
    assert dash["current_rollout_percentage"] == 10.0
    assert dash["window_hours"] == 24 and dash["hours"] == {"first": HOUR - 23, "last": HOUR}
    assert dash["error_rates"]["stt"] == {
        "voice_v2": errors["voice_v2"] / 600,
        "legacy": errors["legacy"] / 2400,
    }
    assert dash["error_rates"]["tts"] == {"voice_v2": None, "legacy": None}
    for system, values in sent.items():
        latency = dash["latency_metrics"]["stt"][system]
        assert latency["count"] == len(values)
        assert latency["mean_ms"] == pytest.approx(sum(values) / len(values), abs=0.05)
        for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            exact = sorted(values)[nearest_rank(q, len(values)) - 1]
            # Reported = the upper bound of the exact value's bucket (rounded to 0.1 ms).
            assert latency[name] / 1.1 - 0.05 < exact <= latency[name] + 0.05, (system, name)
    comparison = dash["system_comparison"]["stt"]
    assert comparison["requests"] == {"voice_v2": 600, "legacy": 2400}
    assert comparison["voice_v2_share"] == pytest.approx(0.2)
    assert comparison["regression"]["status"] in ("regression", "healthy")
    assert comparison["regression"]["numbers"]["v2_requests"] == 600
    assert dash["fallback_rates"]["stt"]["fallbacks"] == 9
    assert dash["fallback_rates"]["stt"]["rate"] == pytest.approx(9 / 600)
    assert dash["fallback_rates"]["stt"]["by_reason"] == {"timeout": 9}
    assert dash["total_failures"] == {"stt": 1, "tts": 0}
    assert dash["shadow"]["stt"]["comparisons"] == 2
    assert dash["shadow"]["stt"]["agreement_rate"] == 0.5
    assert dash["shadow"]["stt"]["mean_wer"] == pytest.approx(0.175)

    # A one-hour window reads only the current hour: a third of the traffic.
    one = await metrics.get_migration_dashboard_data(hours=1, now=T0)
    assert one["system_comparison"]["stt"]["requests"] == {"voice_v2": 200, "legacy": 800}
    # An async rollout source works too, and a failing one leaves the figure empty.

    async def async_rollout() -> float:
        return 30.0

    metrics.set_rollout_source(async_rollout)
    assert (await metrics.get_migration_dashboard_data(1, now=T0))["current_rollout_percentage"] == 30.0

    def broken() -> float:
        raise RuntimeError("flag store down")

    metrics.set_rollout_source(broken)
    assert (await metrics.get_migration_dashboard_data(1, now=T0))["current_rollout_percentage"] is None


async def test_the_dashboard_reads_one_batch_of_hour_keys_and_never_scans(store: StateStore) -> None:
    counting = CountingStore(store)
    metrics = MigrationMetrics(counting, clock=Clock())  # type: ignore[arg-type]
    await metrics.get_migration_dashboard_data(hours=168)
    assert counting.calls == ["execute"]
    # (2 operations x 2 systems x 2 keys + 2 operations x 5 keys) per hour.
    assert counting.batch_sizes == [168 * (2 * 2 * 2 + 2 * 5)]


# --- batching --------------------------------------------------------------------------------------


async def test_100k_records_touch_the_store_once_at_flush(store: StateStore) -> None:
    counting = CountingStore(store)
    metrics = MigrationMetrics(counting, clock=Clock())  # type: ignore[arg-type]
    for i in range(100_000):
        metrics.record_operation("stt", "voice_v2" if i % 4 else "legacy", float(i % 2000), i % 100 != 0)
    assert counting.calls == []
    assert metrics.pending_records == 100_000
    assert await all_metric_keys(store) == []

    assert await metrics.flush() == 100_000
    assert counting.calls == ["execute"]  # ONE pipelined batch, nothing else
    # Deltas, not records: bounded by keys x fields (4 hour keys, and one rollup hash per tier:
    # 10 s, minute, hour, day), ~80 latency buckets each.
    assert counting.batch_sizes[0] < 800
    v2 = decoded(await store.hgetall(ms.operations_key("stt", "voice_v2", HOUR)))
    legacy = decoded(await store.hgetall(ms.operations_key("stt", "legacy", HOUR)))
    assert v2["count"] == 75_000 and legacy["count"] == 25_000
    assert v2["errors"] + legacy["errors"] == 1000
    window = await metrics.window("stt", "voice_v2", 1, now=T0)
    assert window.latency.count == v2["successes"]


async def test_the_background_flusher_writes_without_being_asked(store: StateStore) -> None:
    metrics = MigrationMetrics(store, flush_interval_s=0.05)
    await metrics.start()
    try:
        metrics.record_operation("stt", "voice_v2", 10.0, True)
        await wait_until(lambda: metrics.flushed_records == 1)
        metrics.record_operation("stt", "voice_v2", 10.0, True)
    finally:
        await metrics.stop()  # flushes what is left
    assert metrics.flushed_records == 2 and metrics.pending_records == 0
    assert (await metrics.window("stt", "voice_v2", 1)).requests == 2


async def wait_until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll ``condition`` on the event loop; the limit only stops a broken test from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# --- outages ---------------------------------------------------------------------------------------


async def test_bad_arguments_never_raise_into_the_caller(store: StateStore) -> None:
    metrics = MigrationMetrics(store, clock=Clock())
    metrics.record_operation("stt", "voice_v2", "slow", True)  # type: ignore[arg-type]
    metrics.record_shadow("stt", wer=-1.0, v2_ms=1, legacy_ms=1, v2_ok=True, legacy_ok=True)
    metrics.record_shadow("stt", wer=0.1, v2_ms=math.inf, legacy_ms=1, v2_ok=True, legacy_ok=True)
    assert metrics.invalid_records == 3 and metrics.pending_records == 0
    # Odd but usable values are kept: NaN time counts the request, ':' cannot split a key.
    metrics.record_operation("stt", "voice_v2", math.nan, True)
    metrics.record_operation("a:b", "voice_v2", 1.0, True)
    assert await metrics.flush() == 2
    assert decoded(await store.hgetall(ms.operations_key("stt", "voice_v2", HOUR)))["count"] == 1
    assert decoded(await store.hgetall(ms.operations_key("a_b", "voice_v2", HOUR)))["count"] == 1


# --- Prometheus ------------------------------------------------------------------------------------
