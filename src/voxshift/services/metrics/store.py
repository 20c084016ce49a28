"""Where migration metrics live in the state store, and how deltas become one pipelined batch.

Keys are the seed's (M3.2), in the *raw* store, not under the ``voice_v2:`` namespace, so existing
dashboards and scripts that read ``migration:voice_v2:*`` keep working. Every key is an hour bucket
(``hour = unix_ts // 3600``, as the seed) and a hash of counters, written only with HINCRBY /
HINCRBYFLOAT: two processes flushing into the same hour add up instead of overwriting each other.
Each key's TTL is refreshed to 7 days on every flush, so a key outlives its last write by 7 days.

=================================================  ==============================================
key                                                fields
=================================================  ==============================================
``operations:{operation}:{system}:{hour}``         count, successes, errors, total_latency_ms
                                                   (every request), ``error_type:{type}``
``latency:{operation}:{system}:{hour}``            ``{bucket index}`` counts and sum_ms of the
                                                   successful requests (core.stats.LatencyHistogram)
``fallbacks:{operation}:{hour}``                   count, ``reason:{reason}``, ``path:{from}>{to}``
``total_failures:{operation}:{hour}``              count (both systems failed the request)
``decisions:{operation}:{hour}``                   ``{system}:{reason}`` (router decisions)
``shadow:{operation}:{hour}``                      see :class:`ShadowDelta`
=================================================  ==============================================

The seed kept fallbacks in one list per operation (``fallbacks:{operation}``); here that prefix is
kept and the hour appended, because a single hash would be re-expired on every write and never
shrink, and the dashboard must read a window without SCAN.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from voxshift.core.regression import RegressionDetector
from voxshift.core.stats import LatencyHistogram, WindowStats
from voxshift.stores.state import Batch

PREFIX = "migration:voice_v2:"
RETENTION_S = 7 * 86400  # the seed's 7-day retention
ERROR_TYPE = "error_type:"
# Shadow WER buckets, exclusive, named by their upper bound; "agreement" means WER <= 0.1.
WER_BOUNDS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5)
AGREEMENT_WER = 0.1


def hour_of(ts: float) -> int:
    return int(ts // 3600)


@lru_cache(maxsize=4096)
def part(value: object) -> str:
    """A key segment or field name from a caller's label: ':' separates key segments and '>' paths,
    so both become '_'; long or empty values are cut or named. Callers pass identifiers (operation,
    system, provider, reason), never user data, which is what keeps the cache and key space small."""
    text = str(value).strip().replace(":", "_").replace(">", "_").replace(" ", "_")
    return text[:64] or "unknown"


def operations_key(operation: str, system: str, hour: int) -> str:
    return f"{PREFIX}operations:{operation}:{system}:{hour}"


def latency_key(operation: str, system: str, hour: int) -> str:
    return f"{PREFIX}latency:{operation}:{system}:{hour}"


def fallbacks_key(operation: str, hour: int) -> str:
    return f"{PREFIX}fallbacks:{operation}:{hour}"


def total_failures_key(operation: str, hour: int) -> str:
    return f"{PREFIX}total_failures:{operation}:{hour}"


def decisions_key(operation: str, hour: int) -> str:
    return f"{PREFIX}decisions:{operation}:{hour}"


def shadow_key(operation: str, hour: int) -> str:
    return f"{PREFIX}shadow:{operation}:{hour}"


def wer_field(wer: float) -> str:
    for bound in WER_BOUNDS:
        if wer <= bound:
            return f"wer_le_{bound:g}"
    return f"wer_gt_{WER_BOUNDS[-1]:g}"


def hours_window(now: float, hours: int) -> list[int]:
    """The ``hours`` most recent hour buckets, oldest first, the current (partial) hour included:
    the window covers between ``hours - 1`` and ``hours`` hours of traffic."""
    if not 1 <= hours <= 24 * 366:
        raise ValueError(f"hours must be within 1..{24 * 366}, got {hours!r}")
    last = hour_of(now)
    return list(range(last - hours + 1, last + 1))


@dataclass
class Pending:
    """Everything recorded since the last flush. ``hashes`` holds plain counter deltas per key
    (int fields go out as HINCRBY, float fields as HINCRBYFLOAT, so a field keeps one type)."""

    records: int = 0
    operations: dict[tuple[str, str, int], WindowStats] = field(default_factory=dict)
    hashes: dict[str, dict[str, int | float]] = field(default_factory=dict)

    def add(self, key: str, field_: str, amount: int | float = 1) -> None:
        fields = self.hashes.get(key)
        if fields is None:
            fields = self.hashes[key] = {}
        fields[field_] = fields.get(field_, 0) + amount


def operation_fields(stats: WindowStats) -> dict[str, int | float]:
    fields: dict[str, int | float] = {
        "count": stats.requests,
        "successes": stats.successes,
        "errors": stats.errors,
        "total_latency_ms": float(stats.total_latency_ms),
    }
    for kind, n in stats.error_types.items():
        fields[ERROR_TYPE + part(kind)] = n
    return fields


def build_batch(pending: Pending, ttl_s: float = RETENTION_S) -> Batch:
    """One pipelined batch for all of ``pending``: the increments of each key, then its TTL."""
    batch = Batch()

    def write(key: str, fields: Mapping[str, int | float], *, zeros: bool = False) -> None:
        wrote = False
        for name, amount in fields.items():
            if amount or zeros:
                batch.hincr(key, name, amount)
                wrote = True
        if wrote:
            batch.expire(key, ttl_s)

    for (operation, system, hour), stats in pending.operations.items():
        # The four seed fields always exist (an explicit "errors: 0" reads better than a gap).
        write(operations_key(operation, system, hour), operation_fields(stats), zeros=True)
        write(latency_key(operation, system, hour), stats.latency.to_fields())
    for key, fields in pending.hashes.items():
        write(key, fields)
    return batch


# --- reading back ---------------------------------------------------------------------------------


def number(fields: Mapping[str, bytes], name: str) -> float:
    """A counter field, 0 when absent or unreadable (a dashboard shows what it can)."""
    raw = fields.get(name)
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


def window_stats(pairs: Iterable[tuple[Mapping[str, bytes], Mapping[str, bytes]]]) -> WindowStats:
    """Merge (operations hash, latency hash) pairs, one per hour, into one WindowStats."""
    out = WindowStats()
    for ops, lat in pairs:
        out.requests += int(number(ops, "count"))
        out.errors += int(number(ops, "errors"))
        out.total_latency_ms += number(ops, "total_latency_ms")
        for name in ops:
            if name.startswith(ERROR_TYPE):
                kind = name[len(ERROR_TYPE) :]
                out.error_types[kind] = out.error_types.get(kind, 0) + int(number(ops, name))
        # A corrupted hour: its counts still count, its latencies are unreadable.
        with contextlib.suppress(ValueError):
            out.latency.merge(LatencyHistogram.from_fields(lat))
    return out


def merge_counters(hashes: Iterable[Mapping[str, bytes]]) -> dict[str, float]:
    """Field-wise sums of counter hashes (several hours of one key family)."""
    out: dict[str, float] = {}
    for fields in hashes:
        for name in fields:
            out[name] = out.get(name, 0.0) + number(fields, name)
    return out


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
    agree = sum(v for k, v in fields.items() if k.startswith("wer_le_") and float(k[7:]) <= AGREEMENT_WER)
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


def build_dashboard(
    raw: Mapping[str, Mapping[str, Any]],
    *,
    hours: int,
    hour_range: tuple[int, int],
    generated_at: float,
    rollout: float | None,
    detector: RegressionDetector,
    systems: tuple[str, str],
) -> dict[str, Any]:
    """The dashboard dict from per-operation windows: ``raw[op][system]`` is a WindowStats and
    ``raw[op]["fallbacks" | "total_failures" | "decisions" | "shadow"]`` merged counter hashes.
    ``systems`` is (candidate, baseline): (voice_v2, legacy). Plain JSON types only."""
    v2, legacy = systems
    out: dict[str, Any] = {
        "window_hours": hours,
        "hours": {"first": hour_range[0], "last": hour_range[1]},  # unix_ts // 3600, inclusive
        "generated_at": generated_at,
        "current_rollout_percentage": rollout,
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
