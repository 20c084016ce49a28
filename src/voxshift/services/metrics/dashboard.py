"""The migration dashboard (seed M3.2): what `voxshift metrics` prints and GET /v2/migration/dashboard
returns, computed the same way for both.

The traffic comes from the hour keys every process flushes into, so it is the whole fleet's. Two
rollout figures are shown: the seed's ``current_rollout_percentage`` (one number: the configured STT
percentage, 0 behind the kill switch - :func:`effective_rollout`) and ``rollout_percentages``, what
each operation really gets (:func:`effective_rollouts`: also 0 while its feature is off).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from voxshift.core.flags import FlagConfig
from voxshift.core.regression import RegressionDetector
from voxshift.core.stats import WindowStats
from voxshift.core.vocabulary import OPERATIONS
from voxshift.services.metrics import store as ms
from voxshift.stores.state import Batch

COUNTER_FAMILIES = {
    "fallbacks": ms.fallbacks_key,
    "total_failures": ms.total_failures_key,
    "decisions": ms.decisions_key,
    "shadow": ms.shadow_key,
    "cache": ms.cache_key,
}


class FlagSource(Protocol):
    @property
    def config(self) -> FlagConfig: ...


class DashboardSource(Protocol):
    async def get_migration_dashboard_data(
        self, hours: int = 24, now: float | None = None
    ) -> dict[str, Any]: ...


def effective_rollout(config: FlagConfig) -> float:
    """The STT rollout percentage, 0 while the kill switch is thrown: a percentage behind a thrown
    kill switch sends nobody to v2, and a dashboard saying otherwise would mislead an operator."""
    return float(config.percentages["stt"]) if config.enabled else 0.0


def effective_rollouts(config: FlagConfig) -> dict[str, float]:
    """The share of each operation's traffic the flags send to v2: its percentage, 0 behind the
    kill switch or while the operation's feature (stt_enabled / tts_enabled) is off. Allowlisted
    users still reach v2 with the feature on and 0 %; they are not a percentage."""
    return {
        op: float(config.percentages[op]) if config.enabled and config.feature(op) else 0.0
        for op in OPERATIONS
    }


def rollout_source(flags: FlagSource) -> Callable[[], dict[str, float]]:
    """MigrationMetrics' ``rollout_source``: read at each dashboard call, so it follows the flags.
    ``current`` is the seed's figure, the operations their effective percentages."""

    def read() -> dict[str, float]:
        config = flags.config
        return {"current": effective_rollout(config), **effective_rollouts(config)}

    return read


def rollout_figures(
    value: float | int | Mapping[str, float] | None, operations: Sequence[str]
) -> tuple[float | None, dict[str, float] | None]:
    """A rollout source's answer as (the seed's single figure, per operation). A number is the
    seed's one percentage, so every operation gets it; a mapping names each operation and, under
    ``current``, the single figure (STT's when absent)."""
    if value is None:
        return None, None
    if isinstance(value, Mapping):
        current = value.get("current", value.get("stt"))
        per_op = {op: float(value[op]) for op in operations if op in value}
        return (None if current is None else float(current)), per_op
    number = float(value)
    return number, {op: number for op in operations}


class MigrationDashboard:
    def __init__(self, metrics: DashboardSource) -> None:
        self.metrics = metrics

    async def data(self, hours: int = 24) -> dict[str, Any]:
        return await self.metrics.get_migration_dashboard_data(hours=hours)


# --- reading the hour keys ------------------------------------------------------------------------


def read_batch(operations: Sequence[str], systems: Sequence[str], hours: Sequence[int]) -> Batch:
    """Every hour key the dashboard needs, in the order :func:`raw_windows` consumes them."""
    batch = Batch()
    for op in operations:
        for sys_ in systems:
            for hour in hours:
                batch.hgetall(ms.operations_key(op, sys_, hour)).hgetall(ms.latency_key(op, sys_, hour))
        for key in COUNTER_FAMILIES.values():
            for hour in hours:
                batch.hgetall(key(op, hour))
    return batch


def raw_windows(
    results: Sequence[object], operations: Sequence[str], systems: Sequence[str], hours: int
) -> dict[str, dict[str, Any]]:
    """Per operation: a WindowStats per system and merged counters per family (see read_batch)."""
    found = iter(results)
    raw: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {}
        for sys_ in systems:
            entry[sys_] = ms.window_stats(ms.pairs([next(found) for _ in range(2 * hours)]))
        for name in COUNTER_FAMILIES:
            entry[name] = ms.merge_counters(ms.hashes([next(found) for _ in range(hours)]))
        raw[op] = entry
    return raw


# --- the dashboard --------------------------------------------------------------------------------


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _share(part_: float, whole: float) -> float | None:
    return part_ / whole if whole else None


def latency_summary(stats: WindowStats) -> dict[str, float | int | None]:
    hist = stats.latency
    return {
        "count": hist.count,
        "mean_ms": _round(hist.mean),
        "p50_ms": _round(hist.percentile(0.5)),
        "p95_ms": _round(hist.percentile(0.95)),
        "p99_ms": _round(hist.percentile(0.99)),
    }


def shadow_summary(fields: Mapping[str, float]) -> dict[str, Any]:
    count = fields.get("count", 0.0)
    compared = fields.get("wer_count", 0.0)
    agree = sum(v for k, v in fields.items() if k.startswith("wer_le_") and float(k[7:]) <= ms.AGREEMENT_WER)
    return {
        "comparisons": int(count),
        "compared_transcripts": int(compared),
        "mean_wer": _share(fields.get("wer_sum", 0.0), compared),
        "agreement_rate": _share(agree, compared),  # share of comparisons with WER <= 0.1
        "exact_match_rate": _share(fields.get("wer_le_0", 0.0), compared),
        "wer_buckets": {
            k: int(v)
            for k, v in sorted(fields.items())
            if k.startswith("wer_") and k not in ("wer_sum", "wer_count")
        },
        "v2_success_rate": _share(fields.get("v2_successes", 0.0), count),
        "legacy_success_rate": _share(fields.get("legacy_successes", 0.0), count),
        "v2_mean_ms": _round(_share(fields.get("v2_latency_ms", 0.0), count)),
        "legacy_mean_ms": _round(_share(fields.get("legacy_latency_ms", 0.0), count)),
    }


def fallback_summary(fields: Mapping[str, float], requests: Mapping[str, int]) -> dict[str, Any]:
    """Fallback counts, and their rate: fallbacks per request served (or attempted) by the
    systems they fell back *from* - "what share of v2 attempts needed legacy"."""
    by_path = {k[5:]: int(v) for k, v in fields.items() if k.startswith("path:")}
    from_systems = {path.split(">", 1)[0] for path in by_path}
    attempted = sum(requests.get(system, 0) for system in from_systems)
    total = int(fields.get("count", 0.0))
    return {
        "fallbacks": total,
        "rate": _share(total, attempted),
        "by_reason": {k[7:]: int(v) for k, v in sorted(fields.items()) if k.startswith("reason:")},
        "by_path": dict(sorted(by_path.items())),
    }


def cache_summary(fields: Mapping[str, float]) -> dict[str, Any]:
    hits, misses = int(fields.get("hit", 0.0)), int(fields.get("miss", 0.0))
    return {"hits": hits, "lookups": hits + misses, "rate": _share(hits, hits + misses)}


def build_dashboard(
    raw: Mapping[str, Mapping[str, Any]],
    *,
    hours: int,
    hour_range: tuple[int, int],
    generated_at: float,
    rollout: float | None,
    detector: RegressionDetector,
    systems: tuple[str, str],
    rollouts: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The dashboard dict from per-operation windows: ``raw[op][system]`` is a WindowStats and
    ``raw[op]["fallbacks" | "total_failures" | "decisions" | "shadow" | "cache"]`` merged counter
    hashes. ``systems`` is (candidate, baseline): (voice_v2, legacy). ``rollout`` is the seed's
    single figure, ``rollouts`` the effective percentage per operation. Plain JSON types only."""
    v2, legacy = systems
    out: dict[str, Any] = {
        "window_hours": hours,
        "hours": {"first": hour_range[0], "last": hour_range[1]},  # unix_ts // 3600, inclusive
        "generated_at": generated_at,
        # The seed's key: the configured STT percentage, 0 behind the kill switch (see
        # services.metrics.dashboard); what each operation really gets is in rollout_percentages.
        "current_rollout_percentage": rollout,
        "rollout_percentages": None if rollouts is None else dict(rollouts),
        "cache_hit_rates": {},
        "error_rates": {},
        "latency_metrics": {},
        "fallback_rates": {},
        "system_comparison": {},
        "shadow": {},
        "total_failures": {},
        "decisions": {},
        "error_types": {},
    }
    for op, entry in raw.items():
        stats: dict[str, WindowStats] = {system: entry[system] for system in systems}
        requests = {system: s.requests for system, s in stats.items()}
        out["error_rates"][op] = {system: s.error_rate for system, s in stats.items()}
        out["latency_metrics"][op] = {system: latency_summary(s) for system, s in stats.items()}
        out["error_types"][op] = {system: dict(sorted(s.error_types.items())) for system, s in stats.items()}
        out["fallback_rates"][op] = fallback_summary(entry["fallbacks"], requests)
        out["total_failures"][op] = int(entry["total_failures"].get("count", 0.0))
        out["decisions"][op] = {k: int(v) for k, v in sorted(entry["decisions"].items())}
        out["shadow"][op] = shadow_summary(entry["shadow"])
        out["cache_hit_rates"][op] = cache_summary(entry.get("cache", {}))
        v2_p95, legacy_p95 = stats[v2].latency.percentile(0.95), stats[legacy].latency.percentile(0.95)
        v2_rate, legacy_rate = stats[v2].error_rate, stats[legacy].error_rate
        out["system_comparison"][op] = {
            "requests": requests,
            "voice_v2_share": _share(requests[v2], requests[v2] + requests[legacy]),
            "p95_ratio": None if v2_p95 is None or legacy_p95 is None else v2_p95 / legacy_p95,
            "error_rate_ratio": None if v2_rate is None or not legacy_rate else v2_rate / legacy_rate,
            "regression": detector.evaluate(stats[v2], stats[legacy]).to_dict(),
        }
    return out
