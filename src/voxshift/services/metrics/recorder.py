"""MigrationMetrics: what the router, the shadow runner and the rollout controller measure.

The seed (M3.2) wrote to Redis on every call (LPUSH + EXPIRE + counters: three round trips on the
request path, a request failing when Redis did) and kept only sums, so its own p95 criteria could
not be computed. Here:

* **Recording** (``record_*``) is synchronous, in-process and O(1): it adds to an aggregate keyed
  by (operation, system, time slot of the finest rollup tier) - counters and a fixed-bucket latency
  histogram - and bumps the Prometheus series. It never awaits, never touches the store and never
  raises: a bad argument is counted in ``invalid_records`` and dropped. It is safe from worker
  threads (one short lock).
* **Flushing** (``start()`` runs it every ``flush_interval_s``; ``flush()`` on demand) swaps the
  aggregate for an empty one and sends the deltas as ONE pipelined batch of HINCRBY/HINCRBYFLOAT +
  EXPIRE: the seed's hour keys (layout: :mod:`voxshift.services.metrics.store`) and, in the same
  batch, the rollups at every resolution (:mod:`voxshift.services.metrics.rollups`). If the store is
  down the batch is dropped, its records are counted in ``lost_records`` and the next flush starts
  afresh: at most one interval of data is lost per failed flush, and nothing waits for the store to
  come back. (No retry: a pipeline that failed half-way may have applied part of its increments,
  and re-sending would count them twice.)
* **Reading** (``window()``, ``get_migration_dashboard_data()``) fetches exactly the hour keys of
  the window in one batch - no SCAN, no KEYS - so it covers every process that flushed into the
  store; this process's unflushed last second is not included (``await flush()`` first if needed).
  ``traffic(since, until)`` reads any window at the finest resolution from the rollups, one batch of
  a bounded number of keys (:func:`voxshift.core.time_buckets.cover`) whatever the traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from voxshift.core.regression import RegressionDetector
from voxshift.core.rollout.window import TrafficWindow
from voxshift.core.stats import WindowStats
from voxshift.core.time_buckets import check_tiers, slot_of, tiers_for
from voxshift.core.vocabulary import OPERATIONS
from voxshift.services.metrics import dashboard, rollups
from voxshift.services.metrics import store as ms
from voxshift.services.metrics.prometheus import BreakerSource, MigrationPrometheus
from voxshift.services.metrics.traffic import TrafficReader
from voxshift.stores.state import Batch, StateStore

if TYPE_CHECKING:
    from voxshift.config import Settings

log = logging.getLogger("voxshift.metrics")

SYSTEM_V2 = "voice_v2"
SYSTEM_LEGACY = "legacy"
# A number is the seed's single percentage (for every operation); a mapping gives one per operation
# ("stt", "tts") and, under "current", the figure shown as the seed's current_rollout_percentage.
RolloutValue = float | int | Mapping[str, float] | None
RolloutSource = Callable[[], RolloutValue | Awaitable[RolloutValue]]
DEFAULT_RESOLUTION_S = 10
DEFAULT_FINE_RETENTION_S = 2 * 86400


class MigrationMetrics:
    def __init__(
        self,
        store: StateStore,
        *,
        flush_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        operations: Sequence[str] = OPERATIONS,
        rollout_source: RolloutSource | None = None,
        detector: RegressionDetector | None = None,
        retention_s: float = ms.RETENTION_S,
        resolution_s: int = DEFAULT_RESOLUTION_S,
        fine_retention_s: float = DEFAULT_FINE_RETENTION_S,
    ) -> None:
        if not flush_interval_s > 0:
            raise ValueError("flush_interval_s must be > 0")
        # Rollup tiers, finest first (the configured resolution rounded down to one that nests).
        self.resolutions = tiers_for(int(resolution_s))
        coarse = max(float(fine_retention_s), rollups.COARSE_RETENTION_S)
        self.retentions = (float(fine_retention_s), *(coarse for _ in self.resolutions[1:]))
        check_tiers(self.resolutions, self.retentions)
        self._fine = self.resolutions[0]
        # A slot is final once every process has flushed into it: a few flush intervals, and some
        # seconds of clock skew between replicas.
        self._traffic = TrafficReader(
            store,
            self.resolutions,
            self.retentions,
            (SYSTEM_V2, SYSTEM_LEGACY),
            settle_s=max(10.0, 5 * flush_interval_s),
        )
        self.store = store  # the RAW store: the seed's keys are not namespaced
        self.flush_interval_s = flush_interval_s
        self.clock = clock
        self.operations = tuple(ms.part(op) for op in operations)
        self.rollout_source = rollout_source
        self.detector = detector or RegressionDetector()
        self.retention_s = retention_s
        self.prometheus = MigrationPrometheus(registry)
        self.prometheus.set_pending_source(lambda: self._pending.records)
        self.lost_records = 0
        self.flushed_records = 0
        self.invalid_records = 0
        self.last_flush_error: str | None = None
        self._pending = ms.Pending()
        self._lock = threading.Lock()
        self._flush_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, store: StateStore, settings: Settings, **kwargs: Any) -> MigrationMetrics:
        """Flush interval, rollup resolution and fine retention from the settings."""
        kwargs.setdefault("flush_interval_s", settings.metrics_flush_interval_s)
        kwargs.setdefault("resolution_s", settings.metrics_resolution_s)
        kwargs.setdefault("fine_retention_s", settings.metrics_fine_retention_s)
        return cls(store, **kwargs)

    # --- recording (synchronous, O(1), never raises) ---------------------------------------------
    def record_operation(
        self,
        operation: str,
        system: str,
        duration_ms: float,
        success: bool,
        *,
        provider: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """One request served (or failed) by ``system``; ``duration_ms`` is wall time, all of it."""
        try:
            op, sys_ = ms.part(operation), ms.part(system)
            duration = float(duration_ms)
            kind = ms.part(error_type) if error_type is not None else None
            slot = int(self.clock() // self._fine)
            with self._lock:
                pending = self._pending
                stats = pending.operations.get((op, sys_, slot))
                if stats is None:
                    stats = pending.operations[(op, sys_, slot)] = WindowStats()
                stats.add(duration, bool(success), kind)
                pending.records += 1
            prom = self.prometheus
            outcome = "success" if success else "error"
            prom.child(prom.requests, op, sys_, ms.part(provider or "none"), outcome).inc()
            if success and math.isfinite(duration):
                prom.child(prom.latency, op, sys_).observe(max(0.0, duration) / 1000.0)
        except Exception:
            self._invalid("record_operation")

    def record_fallback(self, operation: str, from_system: str, to_system: str, reason: str) -> None:
        """A request that ``from_system`` could not serve went to ``to_system``."""
        try:
            op, why = ms.part(operation), ms.part(reason)
            now = self.clock()
            key = ms.fallbacks_key(op, ms.hour_of(now))
            with self._lock:
                pending = self._pending
                pending.count(int(now // self._fine), rollups.counter_field(op, rollups.FALLBACKS))
                pending.add(key, "count")
                pending.add(key, "reason:" + why)
                pending.add(key, f"path:{ms.part(from_system)}>{ms.part(to_system)}")
                pending.records += 1
            self.prometheus.child(self.prometheus.fallbacks, op, why).inc()
        except Exception:
            self._invalid("record_fallback")

    def record_total_failure(self, operation: str) -> None:
        """Both systems failed the request: the user got an error."""
        try:
            op = ms.part(operation)
            now = self.clock()
            key = ms.total_failures_key(op, ms.hour_of(now))
            with self._lock:
                self._pending.add(key, "count")
                self._pending.count(int(now // self._fine), rollups.counter_field(op, rollups.TOTAL_FAILURES))
                self._pending.records += 1
            self.prometheus.child(self.prometheus.total_failures, op).inc()
        except Exception:
            self._invalid("record_total_failure")

    def record_cache(self, operation: str, hit: bool) -> None:
        """One v2 cache lookup for ``operation``: answered from the cache (``hit``) or not. Only
        real lookups are recorded (the router's rule: a request with caching off is no lookup)."""
        try:
            op = ms.part(operation)
            outcome = "hit" if hit else "miss"
            now = self.clock()
            key = ms.cache_key(op, ms.hour_of(now))
            with self._lock:
                self._pending.add(key, outcome)
                self._pending.count(int(now // self._fine), rollups.counter_field(op, "cache_" + outcome))
                self._pending.records += 1
            self.prometheus.child(self.prometheus.cache, op, outcome).inc()
        except Exception:
            self._invalid("record_cache")

    def record_decision(self, operation: str, system: str, reason: str) -> None:
        """The router sent a request to ``system`` because of ``reason`` (percentage, allowlist...)."""
        try:
            op, sys_, why = ms.part(operation), ms.part(system), ms.part(reason)
            key = ms.decisions_key(op, ms.hour_of(self.clock()))
            with self._lock:
                self._pending.add(key, f"{sys_}:{why}")
                self._pending.records += 1
            self.prometheus.child(self.prometheus.decisions, op, sys_, why).inc()
        except Exception:
            self._invalid("record_decision")

    def record_shadow(
        self,
        operation: str,
        *,
        wer: float | None,
        v2_ms: float,
        legacy_ms: float,
        v2_ok: bool,
        legacy_ok: bool,
    ) -> None:
        """One shadow comparison; ``wer`` of v2 against legacy, None when there was nothing to
        compare (a side failed, or TTS)."""
        try:
            op = ms.part(operation)
            # float() on everything: a float field must never get an int delta (HINCRBY on "0.3"
            # fails, and with it the whole flush).
            w = None if wer is None else float(wer)
            if w is not None and not (math.isfinite(w) and w >= 0):
                raise ValueError(f"bad WER {wer!r}")
            v2_t, legacy_t = float(v2_ms), float(legacy_ms)
            if not (math.isfinite(v2_t) and math.isfinite(legacy_t)):
                raise ValueError("non-finite shadow latency")
            key = ms.shadow_key(op, ms.hour_of(self.clock()))
            with self._lock:
                pending = self._pending
                pending.add(key, "count")
                pending.add(key, "v2_latency_ms", max(0.0, v2_t))
                pending.add(key, "legacy_latency_ms", max(0.0, legacy_t))
                if v2_ok:
                    pending.add(key, "v2_successes")
                if legacy_ok:
                    pending.add(key, "legacy_successes")
                if v2_ok and legacy_ok:
                    pending.add(key, "both_ok")
                if w is not None:
                    pending.add(key, "wer_count")
                    pending.add(key, "wer_sum", w)
                    pending.add(key, ms.wer_field(w))
                pending.records += 1
            prom = self.prometheus
            outcome = {(True, True): "both_ok", (False, True): "v2_failed", (True, False): "legacy_failed"}
            prom.child(prom.shadow, op, outcome.get((bool(v2_ok), bool(legacy_ok)), "both_failed")).inc()
            if w is not None:
                prom.child(prom.shadow_wer, op).observe(w)
        except Exception:
            self._invalid("record_shadow")

    def record_shadow_dropped(self, operation: str) -> None:
        """A shadow comparison was skipped (queue full): Prometheus only, it is not traffic."""
        try:
            self.prometheus.child(self.prometheus.shadow_dropped, ms.part(operation)).inc()
        except Exception:
            self._invalid("record_shadow_dropped")

    def _invalid(self, what: str) -> None:
        # Reached only from an except block: log, count, swallow. Counting cannot fail.
        self.invalid_records += 1
        self.prometheus.invalid.inc()
        log.debug("%s: unusable arguments, record dropped", what, exc_info=True)

    @property
    def pending_records(self) -> int:
        return self._pending.records

    # --- flushing ---------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Send everything recorded so far as one batch; returns how many records it carried
        (0 when there was nothing, or when the batch was lost). Never raises."""
        async with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, ms.Pending()
            if not pending.records:
                return 0
            try:
                batch = ms.build_batch(
                    pending, self.retention_s, resolutions=self.resolutions, retentions=self.retentions
                )
                await self.store.execute(batch)
            except Exception as exc:  # StoreUnavailable, mostly; anything else is lost the same way
                self.lost_records += pending.records
                self.prometheus.lost.inc(pending.records)
                self.prometheus.child(self.prometheus.flushes, "lost").inc()
                if self.last_flush_error is None:  # one warning per outage, not one per second
                    log.warning("migration metrics: flush failed, %d records lost: %s", pending.records, exc)
                self.last_flush_error = str(exc)
                return 0
            if self.last_flush_error is not None:
                log.warning("migration metrics: flushing again after: %s", self.last_flush_error)
                self.last_flush_error = None
            self.flushed_records += pending.records
            self.prometheus.child(self.prometheus.flushes, "ok").inc()
            return pending.records

    async def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="migration-metrics-flusher")

    async def stop(self) -> None:
        """Stop the flusher after one last flush."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._stopping.wait()
            await self.flush()

    # --- Prometheus -------------------------------------------------------------------------------
    def render_prometheus(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for a /metrics endpoint."""
        return self.prometheus.render()

    def set_breaker_source(self, source: BreakerSource | None) -> None:
        """``source()`` -> ``{provider: "closed" | "open" | "half_open"}``, read at scrape time."""
        self.prometheus.set_breaker_source(source)

    def set_rollout_source(self, source: RolloutSource | None) -> None:
        self.rollout_source = source

    # --- reading ----------------------------------------------------------------------------------
    async def window(
        self, operation: str, system: str, hours: int = 1, now: float | None = None
    ) -> WindowStats:
        """Merged counts and latency histogram of the last ``hours`` hour buckets (see
        :func:`metrics_store.hours_window`). Raises StoreUnavailable when the store is down."""
        op, sys_ = ms.part(operation), ms.part(system)
        hours_ = ms.hours_window(self.clock() if now is None else now, hours)
        batch = Batch()
        for hour in hours_:
            batch.hgetall(ms.operations_key(op, sys_, hour)).hgetall(ms.latency_key(op, sys_, hour))
        results = await self.store.execute(batch)
        return ms.window_stats(ms.pairs(results))

    async def get_migration_dashboard_data(self, hours: int = 24, now: float | None = None) -> dict[str, Any]:
        """The seed's dashboard (current_rollout_percentage, error_rates, latency_metrics,
        fallback_rates, system_comparison) over the last ``hours`` hour buckets, plus shadow
        agreement, total failures, routing decisions and error types. One batch read."""
        at = self.clock() if now is None else now
        hours_ = ms.hours_window(at, hours)
        systems = (SYSTEM_V2, SYSTEM_LEGACY)
        results = await self.store.execute(dashboard.read_batch(self.operations, systems, hours_))
        raw = dashboard.raw_windows(results, self.operations, systems, len(hours_))
        current, per_operation = await self._rollout()
        return dashboard.build_dashboard(
            raw,
            hours=hours,
            hour_range=(hours_[0], hours_[-1]),
            generated_at=at,
            rollout=current,
            rollouts=per_operation,
            detector=self.detector,
            systems=systems,
        )

    async def traffic(self, since: float, until: float | None = None) -> TrafficWindow:
        """Both operations over ``[since, until)`` from the rollups every process flushes into: one
        batch of a bounded number of HGETALLs (:func:`voxshift.core.time_buckets.cover`), whatever
        the traffic. ``until=None`` is now, the current (partial) slot included. The window is
        aligned to the finest resolution (``since`` rounded up, ``until`` up to its slot's end) and
        widened where the finer slots are past their retention; ``start`` and ``end`` of the result
        are the span actually read. The settled part of a long window is summed once and remembered
        (:mod:`voxshift.services.metrics.traffic`), so asking again each interval reads only what
        is new. This process's unflushed records are not in it (``await flush()`` first for them).
        Raises StoreUnavailable when the store is down."""
        now = self.clock()
        end = (slot_of(now, self._fine) + 1) * self._fine if until is None else until
        return await self._traffic.read(since, end, now)

    async def _rollout(self) -> tuple[float | None, dict[str, float] | None]:
        if self.rollout_source is None:
            return None, None
        try:
            value = self.rollout_source()
            if inspect.isawaitable(value):
                value = await value
            return dashboard.rollout_figures(value, self.operations)
        except Exception:  # the dashboard shows the traffic even when the flag store is down
            log.warning("rollout percentage source failed", exc_info=True)
            return None, None
