"""Prometheus series for the migration, on a registry of their own.

A private ``CollectorRegistry`` by default (not the global one), so two MigrationMetrics in one
process (tests, the CLI next to a server) never collide on a metric name, and the app decides what
/metrics exposes. Label children are looked up once and cached: ``Counter.labels()`` costs more than
the increment itself, and recording sits on every request's path.

Labels are identifiers from code (operation, system, provider, reason), never user data; that is
what keeps the series count bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("voxshift.metrics")

BreakerSource = Callable[[], Mapping[str, str]]
BREAKER_STATES = ("closed", "open", "half_open")
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
WER_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)


class _BreakerCollector(Collector):
    """``voxshift_provider_breaker_state{provider, state}``: 1 for each provider's current state,
    0 for the others, read from the app's callback at scrape time (no copy to keep in sync)."""

    def __init__(self) -> None:
        self.source: BreakerSource | None = None

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "voxshift_provider_breaker_state",
            "Circuit breaker state per provider (1 = the current state).",
            labels=["provider", "state"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()  # without samples: registering must not call the app's callback

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        source = self.source
        if source is not None:
            try:
                states = dict(source())
            except Exception:  # a broken callback must not break the whole scrape
                log.exception("breaker state callback failed")
                states = {}
            for provider, current in sorted(states.items()):
                for state in BREAKER_STATES:
                    family.add_metric([str(provider), state], 1.0 if str(current) == state else 0.0)
        yield family


class MigrationPrometheus:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "voxshift_migration_requests",
            "Voice operations by system (voice_v2/legacy), provider and outcome.",
            ["operation", "system", "provider", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "voxshift_migration_latency_seconds",
            "Latency of successful voice operations.",
            ["operation", "system"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.fallbacks = Counter(
            "voxshift_migration_fallbacks",
            "Requests that fell back from one system to the other.",
            ["operation", "reason"],
            registry=r,
        )
        self.decisions = Counter(
            "voxshift_migration_decisions",
            "Routing decisions: which system a request was sent to, and why.",
            ["operation", "system", "reason"],
            registry=r,
        )
        self.total_failures = Counter(
            "voxshift_migration_total_failures",
            "Requests that failed on both systems.",
            ["operation"],
            registry=r,
        )
        self.cache = Counter(
            "voxshift_migration_cache_lookups",
            "voice_v2 cache lookups of routed requests, by outcome (hit or miss).",
            ["operation", "outcome"],
            registry=r,
        )
        self.shadow = Counter(
            "voxshift_migration_shadow_comparisons",
            "Shadow comparisons (legacy answered, v2 ran in the background) by outcome.",
            ["operation", "outcome"],
            registry=r,
        )
        self.shadow_wer = Histogram(
            "voxshift_migration_shadow_wer",
            "Word error rate of v2 against the legacy transcript in shadow comparisons.",
            ["operation"],
            buckets=WER_BUCKETS,
            registry=r,
        )
        self.shadow_dropped = Counter(
            "voxshift_migration_shadow_dropped",
            "Shadow comparisons skipped because the shadow queue was full.",
            ["operation"],
            registry=r,
        )
        self.lost = Counter(
            "voxshift_migration_metrics_lost_records",
            "Metric records lost because the state store could not take their flush.",
            registry=r,
        )
        self.invalid = Counter(
            "voxshift_migration_metrics_invalid_records",
            "Metric records refused because their arguments were unusable.",
            registry=r,
        )
        self.flushes = Counter(
            "voxshift_migration_metrics_flushes",
            "Flushes of the in-process metric buffer to the state store, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.tool_errors = Counter(
            "voxshift_langgraph_tool_errors",
            "LangGraph tool calls answered with success=false, by tool and error code (bad input "
            "included; failures of the systems also count in the migration series).",
            ["tool", "error_type"],
            registry=r,
        )
        self.pending = Gauge(
            "voxshift_migration_metrics_pending_records",
            "Records waiting for the next flush.",
            registry=r,
        )
        self._breakers = _BreakerCollector()
        r.register(self._breakers)
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def tool_error(self, tool: str, error_type: str) -> None:
        # Codes come from voxshift's error family (a bounded set), never from user input.
        self.child(self.tool_errors, tool, error_type[:64]).inc()

    def set_breaker_source(self, source: BreakerSource | None) -> None:
        self._breakers.source = source

    def set_pending_source(self, source: Callable[[], float]) -> None:
        self.pending.set_function(source)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
