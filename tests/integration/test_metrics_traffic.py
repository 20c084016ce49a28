"""MigrationMetrics.traffic on the real state stores (a SQLite file and a real redis-server): the
rollups written beside the seed's hour keys in the same flush, windows at 1 s resolution with an
injected clock, several processes adding up, a window across minute/hour/day boundaries equal to
the sum of its parts, a bounded number of keys for a 14-day window, cache outcomes, and TTLs."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.redis_server import RedisServer
from voxshift.core.rollout.window import OperationWindow, TrafficWindow
from voxshift.core.stats import bucket_index
from voxshift.errors import StoreUnavailable
from voxshift.services.metrics import store as ms
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.metrics.rollups import COARSE_RETENTION_S, ROLLUP_PREFIX, rollup_key
from voxshift.stores.state import StateStore, open_state_store

DAY = 86_400
T0 = 20_600 * DAY + 7 * 3600 + 1800.0  # 07:30:00 on a fixed day: predictable slot numbers
FINE_RETENTION = 2 * DAY


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The real store, with the size of every batch written down (an observer, not a fake)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.batch_sizes: list[int] = []

    async def execute(self, batch: Any) -> Any:
        self.batch_sizes.append(len(batch))
        return await self.inner.execute(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


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


def metrics_for(store: Any, clock: Clock, **kwargs: Any) -> MigrationMetrics:
    return MigrationMetrics(store, clock=clock, resolution_s=1, fine_retention_s=FINE_RETENTION, **kwargs)


def as_tuple(w: OperationWindow) -> tuple[Any, ...]:
    """Everything a window holds, comparable with ==."""
    return (
        w.v2.requests,
        w.v2.errors,
        round(w.v2.total_latency_ms, 6),
        tuple(w.v2.latency.counts),
        round(w.v2.latency.sum_ms, 6),
        dict(w.v2.error_types),
        w.legacy.requests,
        w.legacy.errors,
        tuple(w.legacy.latency.counts),
        w.fallbacks,
        w.total_failures,
        w.cache_hits,
        w.cache_lookups,
    )


def total(windows: list[TrafficWindow], op: str) -> tuple[Any, ...]:
    merged = OperationWindow()
    for w in windows:
        merged.merge(w.operations[op])
    return as_tuple(merged)


# --- windows at 1 s ---------------------------------------------------------------------------------


async def test_traffic_reads_exactly_the_seconds_of_the_window(store: StateStore) -> None:
    clock = Clock()
    metrics = metrics_for(store, clock)
    assert metrics.resolutions == (1, 60, 3600, 86400)
    for second in range(10):  # second s: s + 1 v2 requests of 100 ms, one legacy request
        clock.now = T0 + second + 0.25
        for _ in range(second + 1):
            metrics.record_operation("stt", "voice_v2", 100.0, True, provider="whisper")
        metrics.record_operation("stt", "legacy", 300.0, second % 2 == 0, error_type="HTTPError")
    await metrics.flush()
    clock.now = T0 + 20

    window = await metrics.traffic(T0 + 3, T0 + 6)  # seconds 3, 4, 5
    stt = window["stt"]
    assert (window.start, window.end) == (T0 + 3, T0 + 6)
    assert stt.v2.requests == 4 + 5 + 6 and stt.v2.errors == 0
    assert stt.v2.latency.count == 15 and stt.v2.latency.counts[bucket_index(100.0)] == 15
    assert stt.v2.total_latency_ms == pytest.approx(1500.0)
    assert stt.legacy.requests == 3 and stt.legacy.errors == 2  # seconds 3 and 5 failed
    assert stt.legacy.error_types == {"HTTPError": 2}
    assert window["tts"].v2.requests == 0 and window.requests == 18

    # `since` inside a second leaves that second out (it may hold what came before the window);
    # `until` inside a second keeps it (with until = now it is the newest traffic).
    window = await metrics.traffic(T0 + 2.5, T0 + 4.1)
    assert window["stt"].v2.requests == 4 + 5 and (window.start, window.end) == (T0 + 3, T0 + 5)
    # Default `until` is now, the current second included.
    clock.now = T0 + 9.5
    assert (await metrics.traffic(T0 + 8))["stt"].v2.requests == 9 + 10
    assert (await metrics.traffic(T0 + 100))["stt"].v2.requests == 0


async def test_two_processes_add_up(store: StateStore) -> None:
    clock = Clock()
    first, second = metrics_for(store, clock), metrics_for(store, clock)
    for i in range(30):
        clock.now = T0 + i
        first.record_operation("tts", "voice_v2", 50.0 + i, True)
        second.record_operation("tts", "voice_v2", 500.0, i % 3 != 0, error_type="TimeoutError")
        if i % 3 == 0:
            second.record_fallback("tts", "voice_v2", "legacy", "timeout")
        if i == 7:
            first.record_total_failure("tts")
    assert await first.flush() == 31 and await second.flush() == 40
    window = await first.traffic(T0, T0 + 30)
    tts = window["tts"]
    assert tts.v2.requests == 60 and tts.v2.errors == 10
    assert tts.v2.error_types == {"TimeoutError": 10}
    assert tts.fallbacks == 10 and tts.total_failures == 1
    assert tts.v2.latency.count == 50
    assert tts.v2.latency.sum_ms == pytest.approx(sum(50.0 + i for i in range(30)) + 20 * 500.0)
    assert (await second.traffic(T0, T0 + 30))["tts"].v2.requests == 60  # either reads the same


async def test_a_window_across_boundaries_equals_the_sum_of_its_parts(store: StateStore) -> None:
    clock = Clock()
    metrics = metrics_for(store, clock)
    day_start = T0 // DAY * DAY
    start = day_start + DAY - 2 * 3600 - 125.5  # 21:57:54.5 the day before a day boundary
    step = 37.3  # seconds between records: lands in every kind of slot
    records = 0
    for i in range(int((3 * 3600 + 400) / step)):  # past 01:00 of the next day
        clock.now = start + i * step
        metrics.record_operation("stt", "voice_v2", 10.0 + i % 700, i % 17 != 0, error_type="E")
        metrics.record_operation("stt", "legacy", 20.0 + i % 300, True)
        if i % 5 == 0:
            metrics.record_cache("stt", hit=i % 10 == 0)
        records += 1
    await metrics.flush()
    clock.now = start + 4 * 3600

    since, until = start + 10.0, start + 3 * 3600 + 200.0
    whole = await metrics.traffic(since, until)
    cuts = [since, start + 95.0, day_start + DAY - 3600, day_start + DAY, day_start + DAY + 61.0, until]
    parts = [await metrics.traffic(a, b) for a, b in itertools.pairwise(cuts)]
    assert as_tuple(whole["stt"]) == total(parts, "stt")
    # And it is exactly the records whose second is in [ceil(since), ceil(until)).
    inside = [i for i in range(records) if math.ceil(since) <= start + i * step < math.ceil(until)]
    assert whole["stt"].v2.requests == len(inside)
    assert whole["stt"].v2.errors == sum(1 for i in inside if i % 17 == 0)
    assert whole["stt"].cache_lookups == sum(1 for i in inside if i % 5 == 0)
    assert whole["stt"].cache_hits == sum(1 for i in inside if i % 10 == 0)


async def test_a_14_day_window_reads_a_bounded_number_of_keys(store: StateStore) -> None:
    counting = CountingStore(store)
    clock = Clock()
    metrics = metrics_for(counting, clock)
    # One request an hour for 14 days (the writes use the clock of their time), then one now.
    for hour in range(14 * 24):
        clock.now = T0 - 14 * DAY + hour * 3600 + 1
        metrics.record_operation("stt", "voice_v2", 200.0, True)
    clock.now = T0
    metrics.record_operation("stt", "voice_v2", 200.0, True)
    await metrics.flush()
    counting.batch_sizes.clear()

    since = T0 - 14 * DAY - 30.5
    window = await metrics.traffic(since)
    assert len(counting.batch_sizes) == 1  # one batch
    keys_read = counting.batch_sizes[0]
    assert keys_read <= 2 * (59 + 59 + 23) + 15  # the bound of core.time_buckets
    # Every request is there: the fine slots older than two days are past the fine retention, but
    # the minute/hour/day slots that stand for them are kept for 15 days.
    assert window["stt"].v2.requests == 14 * 24 + 1
    # The 30 expired seconds at the start were read as their whole minute: the window widened.
    assert window.start == T0 - 14 * DAY - 60

    # More traffic does not make it dearer, and asking again (as the controller does every
    # interval) reads only what is not settled yet: the first read's sum of the settled part is kept.
    for n in (10, 100):
        for _ in range(n):
            metrics.record_operation("stt", "legacy", 300.0, True)
        await metrics.flush()
        counting.batch_sizes.clear()
        again = await metrics.traffic(since)
        assert len(counting.batch_sizes) == 1 and counting.batch_sizes[0] <= 12  # the last ~10 s
        assert again["stt"].v2.requests == 14 * 24 + 1 and again["stt"].legacy.requests in (10, 110)
    # An interval later: the minute that settled meanwhile, and the new tail; the numbers are those
    # of a reader that remembers nothing (another process).
    clock.now = T0 + 60
    metrics.record_operation("tts", "voice_v2", 80.0, True)
    await metrics.flush()
    counting.batch_sizes.clear()
    later = await metrics.traffic(since)
    assert len(counting.batch_sizes) == 1 and counting.batch_sizes[0] <= 60 + 12
    fresh = await metrics_for(store, clock).traffic(since)
    for op in ("stt", "tts"):
        assert as_tuple(later[op]) == as_tuple(fresh[op])
    assert (later.start, later.end) == (fresh.start, fresh.end) == (T0 - 14 * DAY - 60, T0 + 61)
    assert later["tts"].v2.requests == 1 and later.requests == 14 * 24 + 1 + 110 + 1


# --- what a flush writes --------------------------------------------------------------------------


async def test_one_flush_writes_hour_keys_and_every_tier_with_its_ttl(store: StateStore) -> None:
    counting = CountingStore(store)
    clock = Clock()
    metrics = metrics_for(counting, clock)
    metrics.record_operation("stt", "voice_v2", 120.0, True, provider="whisper")
    metrics.record_operation("stt", "voice_v2", 9.0, False, error_type="ProviderError")
    metrics.record_fallback("stt", "voice_v2", "legacy", "error")
    metrics.record_cache("stt", True)
    metrics.record_cache("stt", False)
    metrics.record_cache("tts", False)
    assert await metrics.flush() == 6
    assert len(counting.batch_sizes) == 1  # one pipelined batch for hour keys and rollups

    keys = sorted([key async for key in store.scan(ROLLUP_PREFIX)])
    expected = {rollup_key(res, int(T0 // res)) for res in (1, 60, 3600, 86400)}
    assert set(keys) == expected
    for key in keys:
        fields = {k: float(v) for k, v in (await store.hgetall(key)).items()}
        assert fields == {
            "stt|voice_v2|count": 2,
            "stt|voice_v2|errors": 1,
            "stt|voice_v2|total_ms": 129,
            "stt|voice_v2|err:ProviderError": 1,
            f"stt|voice_v2|lat:{bucket_index(120.0)}": 1,
            "stt|voice_v2|lat:sum_ms": 120,
            "stt|fallbacks": 1,
            "stt|cache_hit": 1,
            "stt|cache_miss": 1,
            "tts|cache_miss": 1,
        }
        ttl = await store.ttl(key)
        keep = FINE_RETENTION if key == rollup_key(1, int(T0)) else COARSE_RETENTION_S
        assert ttl is not None and keep - 120 < ttl <= keep, (key, ttl)
    # The seed-style cache key, beside the other hour keys, with their 7-day TTL.
    hour = int(T0 // 3600)
    assert {k: float(v) for k, v in (await store.hgetall(ms.cache_key("stt", hour))).items()} == {
        "hit": 1,
        "miss": 1,
    }
    ttl = await store.ttl(ms.cache_key("tts", hour))
    assert ttl is not None and ms.RETENTION_S - 120 < ttl <= ms.RETENTION_S

    window = await metrics.traffic(T0 - 1)
    assert (window["stt"].cache_hits, window["stt"].cache_lookups) == (1, 2)
    assert (window["tts"].cache_hits, window["tts"].cache_lookups) == (0, 1)
    dash = await metrics.get_migration_dashboard_data(hours=1, now=T0)
    assert dash["cache_hit_rates"] == {
        "stt": {"hits": 1, "lookups": 2, "rate": 0.5},
        "tts": {"hits": 0, "lookups": 1, "rate": 0.0},
    }


async def test_the_configured_resolution_sets_the_finest_tier(store: StateStore) -> None:
    clock = Clock(T0 + 3)  # 07:30:03: in the 10 s slot starting 07:30:00
    metrics = MigrationMetrics(store, clock=clock, resolution_s=10)
    metrics.record_operation("tts", "legacy", 100.0, True)
    clock.now = T0 + 12
    metrics.record_operation("tts", "legacy", 100.0, True)
    await metrics.flush()
    keys = {key async for key in store.scan(ROLLUP_PREFIX + "10:")}
    assert keys == {rollup_key(10, int(T0 // 10)), rollup_key(10, int(T0 // 10) + 1)}
    # A window from 07:30:05 starts at the next 10 s boundary: the first record is not in it.
    assert (await metrics.traffic(T0 + 5))["tts"].legacy.requests == 1
    assert (await metrics.traffic(T0))["tts"].legacy.requests == 2


async def test_traffic_raises_when_the_store_is_down(tmp_path: Path) -> None:
    from tests.fixtures.redis_server import free_port

    store = open_state_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        metrics = metrics_for(store, Clock())
        with pytest.raises(StoreUnavailable):
            await metrics.traffic(T0 - 60)
        assert (await metrics.traffic(T0, T0 - 5)).requests == 0  # an empty window reads nothing
    finally:
        await store.aclose()


async def test_a_remembered_window_starts_again_when_the_clock_goes_back(store: StateStore) -> None:
    clock = Clock()
    metrics = metrics_for(store, clock)
    since = T0 - 3600.5
    for i in range(0, 3600, 7):
        clock.now = T0 - 3600 + i
        metrics.record_operation("stt", "voice_v2", 100.0, True)
    await metrics.flush()
    clock.now = T0
    assert (await metrics.traffic(since))["stt"].v2.requests == len(range(0, 3600, 7))
    clock.now = T0 - 1800  # an injected clock may go back: the remembered sum must not leak past it
    back = await metrics.traffic(since)
    fresh = await metrics_for(store, clock).traffic(since)
    assert as_tuple(back["stt"]) == as_tuple(fresh["stt"])
    assert back["stt"].v2.requests == len(range(0, 1801, 7))
