"""MigrationMetrics when its store fails (a real redis-server stopped, a SQLite file locked out:
only the unflushed records are lost, then it recovers) and its Prometheus exposition."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.redis_server import RedisServer
from tests.integration.test_metrics import HOUR, Clock, decoded, wait_until
from voxshift.services.metrics import store as ms
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.stores.state import open_state_store
from voxshift.stores.state.sqlite import SqliteStateStore


async def test_redis_down_loses_only_the_unflushed_records_then_recovers(clean_redis: RedisServer) -> None:
    store = open_state_store(clean_redis.url, timeout_s=0.5)
    metrics = MigrationMetrics(store, clock=Clock(), flush_interval_s=0.05)
    try:
        metrics.record_operation("stt", "voice_v2", 10.0, True)
        assert await metrics.flush() == 1
        await asyncio.to_thread(clean_redis.stop)
        await metrics.start()  # the flusher keeps running through the outage
        for _ in range(50):
            metrics.record_operation("stt", "voice_v2", 10.0, False, error_type="x")  # no exception
        metrics.record_fallback("stt", "voice_v2", "legacy", "store")
        await wait_until(lambda: metrics.lost_records == 51)
        assert metrics.last_flush_error is not None
        await asyncio.to_thread(clean_redis.restart)
        for _ in range(7):
            metrics.record_operation("stt", "voice_v2", 10.0, True)
        await wait_until(lambda: metrics.flushed_records == 8)
        await metrics.stop()
        assert metrics.lost_records == 51 and metrics.last_flush_error is None
        # The server restarted empty: only what was recorded after it came back is there.
        ops = decoded(await store.hgetall(ms.operations_key("stt", "voice_v2", HOUR)))
        assert ops["count"] == 7 and ops["errors"] == 0
        assert prometheus_value(metrics, "voxshift_migration_metrics_lost_records_total") == 51
    finally:
        await metrics.stop()
        if not clean_redis.running:
            await asyncio.to_thread(clean_redis.restart)
        await store.aclose()


async def test_sqlite_locked_out_loses_only_the_unflushed_records_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path, busy_timeout_s=0.1)  # the real store; a short wait for the lock
    metrics = MigrationMetrics(store, clock=Clock())
    blocker = None
    try:
        metrics.record_operation("tts", "legacy", 10.0, True)
        assert await metrics.flush() == 1
        # Another process' writer holds the file's write lock past busy_timeout.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        for _ in range(20):
            metrics.record_operation("tts", "legacy", 10.0, True)
        assert await metrics.flush() == 0  # no exception, the batch is dropped and counted
        assert metrics.lost_records == 20
        blocker.execute("ROLLBACK")
        metrics.record_operation("tts", "legacy", 10.0, True)
        assert await metrics.flush() == 1
        assert decoded(await store.hgetall(ms.operations_key("tts", "legacy", HOUR)))["count"] == 2
    finally:
        if blocker is not None:
            blocker.close()
        await store.aclose()


def prometheus_value(metrics: MigrationMetrics, sample: str, **labels: str) -> float | None:
    text, _ = metrics.render_prometheus()
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


EXPECTED_SERIES: list[tuple[str, dict[str, str], float]] = [
    (
        "requests_total",
        {"operation": "stt", "system": "voice_v2", "provider": "openai", "outcome": "success"},
        3,
    ),
    ("requests_total", {"operation": "stt", "system": "legacy", "provider": "none", "outcome": "error"}, 1),
    ("latency_seconds_count", {"operation": "stt", "system": "voice_v2"}, 3),
    ("latency_seconds_bucket", {"operation": "stt", "system": "voice_v2", "le": "1.0"}, 0),
    ("latency_seconds_bucket", {"operation": "stt", "system": "voice_v2", "le": "2.0"}, 3),
    ("fallbacks_total", {"operation": "stt", "reason": "timeout"}, 1),
    ("decisions_total", {"operation": "tts", "system": "voice_v2", "reason": "allowlist"}, 1),
    ("total_failures_total", {"operation": "tts"}, 1),
    ("shadow_comparisons_total", {"operation": "stt", "outcome": "both_ok"}, 1),
    ("shadow_dropped_total", {"operation": "stt"}, 1),
    ("metrics_pending_records", {}, 8),
]


async def test_prometheus_exposes_the_labelled_series(tmp_path: Path) -> None:
    store = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    metrics = MigrationMetrics(store, clock=Clock())
    for _ in range(3):
        metrics.record_operation("stt", "voice_v2", 1500.0, True, provider="openai")
    metrics.record_operation("stt", "legacy", 50.0, False, error_type="HTTPError")
    metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
    metrics.record_decision("tts", "voice_v2", "allowlist")
    metrics.record_total_failure("tts")
    metrics.record_shadow("stt", wer=0.0, v2_ms=1, legacy_ms=1, v2_ok=True, legacy_ok=True)
    metrics.record_shadow_dropped("stt")
    metrics.set_breaker_source(lambda: {"openai": "open", "whisper": "closed"})
    text, content_type = metrics.render_prometheus()
    assert content_type.startswith("text/plain") and b'operation="stt"' in text
    for name, labels, expected in EXPECTED_SERIES:
        assert prometheus_value(metrics, f"voxshift_migration_{name}", **labels) == expected, (name, labels)
    breaker = "voxshift_provider_breaker_state"
    assert prometheus_value(metrics, breaker, provider="openai", state="open") == 1
    assert prometheus_value(metrics, breaker, provider="openai", state="closed") == 0
    assert prometheus_value(metrics, breaker, provider="whisper", state="closed") == 1
    await metrics.flush()
    assert prometheus_value(metrics, "voxshift_migration_metrics_flushes_total", outcome="ok") == 1
    assert prometheus_value(metrics, "voxshift_migration_metrics_pending_records") == 0

    def broken() -> dict[str, str]:
        raise RuntimeError("no breakers")

    metrics.set_breaker_source(broken)  # a broken callback costs its own series, not the scrape
    assert prometheus_value(metrics, "voxshift_migration_requests_total", outcome="success") == 3
    assert prometheus_value(metrics, breaker, provider="openai", state="open") is None
    # Each MigrationMetrics has its own registry: a second one starts from zero, no name clash.
    assert prometheus_value(MigrationMetrics(store), "voxshift_migration_requests_total") is None
    await store.aclose()
