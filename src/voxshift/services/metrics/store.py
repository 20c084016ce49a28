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
``cache:{operation}:{hour}``                       hit, miss (v2 cache lookups)
=================================================  ==============================================

The seed kept fallbacks in one list per operation (``fallbacks:{operation}``); here that prefix is
kept and the hour appended, because a single hash would be re-expired on every write and never
shrink, and the dashboard must read a window without SCAN.

The same flush also writes the finer-grained rollups (:mod:`voxshift.services.metrics.rollups`)
that ``MigrationMetrics.traffic`` reads; records are aggregated in-process per slot of the finest
tier, and each slot's hour is derived from it at flush time (tiers nest, so it is exact).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from voxshift.core.stats import LatencyHistogram, WindowStats
from voxshift.services.metrics import rollups
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
    so both become '_', as does '|' (it separates a rollup field's parts); long or empty values are
    cut or named. Callers pass identifiers (operation,
    system, provider, reason), never user data, which is what keeps the cache and key space small."""
    text = str(value).strip().replace(":", "_").replace(">", "_").replace("|", "_").replace(" ", "_")
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


def cache_key(operation: str, hour: int) -> str:
    return f"{PREFIX}cache:{operation}:{hour}"


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
    """Everything recorded since the last flush. ``operations`` is keyed by (operation, system,
    slot of the finest tier); ``hashes`` holds plain counter deltas per hour key and ``counters``
    rollup counter deltas per finest slot (int fields go out as HINCRBY, float fields as
    HINCRBYFLOAT, so a field keeps one type)."""

    records: int = 0
    operations: dict[tuple[str, str, int], WindowStats] = field(default_factory=dict)
    hashes: dict[str, dict[str, int | float]] = field(default_factory=dict)
    counters: dict[int, dict[str, int | float]] = field(default_factory=dict)

    def add(self, key: str, field_: str, amount: int | float = 1) -> None:
        fields = self.hashes.get(key)
        if fields is None:
            fields = self.hashes[key] = {}
        fields[field_] = fields.get(field_, 0) + amount

    def count(self, slot: int, field_: str) -> None:
        fields = self.counters.get(slot)
        if fields is None:
            fields = self.counters[slot] = {}
        fields[field_] = fields.get(field_, 0) + 1


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


def build_batch(
    pending: Pending,
    ttl_s: float = RETENTION_S,
    *,
    resolutions: tuple[int, ...] = (3600,),
    retentions: tuple[float, ...] = (RETENTION_S,),
) -> Batch:
    """One pipelined batch for all of ``pending``: the increments of each key, then its TTL; the
    hour keys first, then the rollups of every tier (``resolutions``, finest first, the slots of
    ``pending`` being of the finest; ``retentions`` their TTLs)."""
    batch = Batch()
    fine_s = resolutions[0]
    fine: dict[int, rollups.Fields] = pending.counters  # the flusher owns ``pending`` now: reuse it
    hours: dict[tuple[str, str, int], WindowStats] = {}
    for (operation, system, slot), stats in pending.operations.items():
        deltas = rollups.stats_fields(operation, system, stats)
        found = fine.get(slot)
        if found is None:
            fine[slot] = deltas
        else:
            rollups.add_fields(found, deltas)
        at = (operation, system, slot * fine_s // 3600)
        merged = hours.get(at)
        if merged is None:
            hours[at] = stats  # its rollup fields are taken: merging into it later is harmless
        else:
            merged.merge(stats)

    def write(key: str, fields: Mapping[str, int | float], *, zeros: bool = False) -> None:
        wrote = False
        for name, amount in fields.items():
            if amount or zeros:
                batch.hincr(key, name, amount)
                wrote = True
        if wrote:
            batch.expire(key, ttl_s)

    for (operation, system, hour), stats in hours.items():
        # The four seed fields always exist (an explicit "errors: 0" reads better than a gap).
        write(operations_key(operation, system, hour), operation_fields(stats), zeros=True)
        write(latency_key(operation, system, hour), stats.latency.to_fields())
    for key, fields in pending.hashes.items():
        write(key, fields)
    rollups.write_rollups(batch, fine, resolutions, retentions)
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


def hashes(results: Iterable[object]) -> list[dict[str, bytes]]:
    """Store results of HGETALLs, anything that is not a hash (a failed read) as an empty one."""
    return [r if isinstance(r, dict) else {} for r in results]


def pairs(results: Iterable[object]) -> list[tuple[dict[str, bytes], dict[str, bytes]]]:
    """(operations hash, latency hash) pairs from alternating HGETALL results."""
    found = hashes(results)
    return list(zip(found[0::2], found[1::2], strict=True))
