"""Rollups: the migration traffic at several time resolutions, for "traffic since T" at any interval.

The seed's hour keys (:mod:`voxshift.services.metrics.store`) are too coarse for a rollout
controller that acts within one evaluation interval, and reading a 14-day phase from them would
cost seven keys per hour. So every flush also adds its deltas to one hash per *slot* of each tier
(:func:`voxshift.core.time_buckets.tiers_for`: the configured resolution, minute, hour, day)::

    migration:voice_v2:rollup:{resolution}:{slot}      slot = unix_ts // resolution

Each hash holds every (operation, system) pair of its slot, so a window is one HGETALL per slot
(:func:`voxshift.core.time_buckets.cover`), however much traffic it saw:

=======================================  ========================================================
field                                    what
=======================================  ========================================================
``{op}|{system}|count``                  requests (every attempt, failed ones included)
``{op}|{system}|errors``                 failed requests
``{op}|{system}|total_ms``               wall time of every request (float)
``{op}|{system}|err:{type}``             failures by error type
``{op}|{system}|lat:{bucket}``           successful requests per latency bucket
                                         (:class:`voxshift.core.stats.LatencyHistogram`)
``{op}|{system}|lat:sum_ms``             their latency sum (float)
``{op}|fallbacks``                       v2 attempts that fell back to legacy
``{op}|total_failures``                  both systems failed
``{op}|cache_hit``, ``{op}|cache_miss``  v2 cache lookups (see ``MigrationMetrics.record_cache``)
=======================================  ========================================================

Written with HINCRBY / HINCRBYFLOAT like the hour keys (processes add up), each key's TTL refreshed
to its tier's retention on every flush: the finest tier for ``metrics_fine_retention_s``, the
coarser ones for :data:`COARSE_RETENTION_S`, longer than the longest phase (14 days).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from voxshift.core.rollout.window import OperationWindow, TrafficWindow
from voxshift.core.stats import N_BUCKETS, SUM_FIELD, WindowStats
from voxshift.core.time_buckets import Slot
from voxshift.stores.state import Batch

ROLLUP_PREFIX = "migration:voice_v2:rollup:"
COARSE_RETENTION_S = 15 * 86400  # a production phase lasts 14 days; its first day must still be read
SEP = "|"
LAT = "lat:"
ERR = "err:"
# Plain counters of an operation (not of a system), named as their fields.
FALLBACKS = "fallbacks"
TOTAL_FAILURES = "total_failures"
CACHE_HIT = "cache_hit"
CACHE_MISS = "cache_miss"

Fields = dict[str, int | float]


def rollup_key(resolution: int, slot: int) -> str:
    return f"{ROLLUP_PREFIX}{resolution}:{slot}"


def counter_field(operation: str, name: str) -> str:
    return f"{operation}{SEP}{name}"


def stats_fields(operation: str, system: str, stats: WindowStats) -> Fields:
    """The rollup fields of one (operation, system) aggregate; zero counts are left out."""
    head = f"{operation}{SEP}{system}{SEP}"
    fields: Fields = {head + "count": stats.requests, head + "total_ms": float(stats.total_latency_ms)}
    if stats.errors:
        fields[head + "errors"] = stats.errors
    for kind, n in stats.error_types.items():
        fields[head + ERR + kind] = n
    hist = stats.latency
    if hist.total:
        for i, c in enumerate(hist.counts):
            if c:
                fields[f"{head}{LAT}{i}"] = c
        fields[head + LAT + SUM_FIELD] = hist.sum_ms
    return fields


def add_fields(into: Fields, fields: Mapping[str, int | float]) -> None:
    for name, amount in fields.items():
        into[name] = into.get(name, 0) + amount


def tier_deltas(fine: Mapping[int, Fields], resolutions: Sequence[int]) -> dict[tuple[int, int], Fields]:
    """Deltas per slot of every tier from deltas per slot of the finest one (``resolutions[0]``):
    a fine slot lies in exactly one slot of each coarser tier (tiers nest)."""
    out: dict[tuple[int, int], Fields] = {}
    base = resolutions[0]
    for slot, fields in fine.items():
        start = slot * base
        for res in resolutions:
            key = (res, start // res)
            found = out.get(key)
            if found is None:
                out[key] = dict(fields)
            else:
                add_fields(found, fields)
    return out


def write_rollups(
    batch: Batch, fine: Mapping[int, Fields], resolutions: Sequence[int], retentions: Sequence[float]
) -> None:
    """Append the increments of every tier's slots, then each key's TTL, to ``batch``."""
    ttl = dict(zip(resolutions, retentions, strict=True))
    for (res, slot), fields in tier_deltas(fine, resolutions).items():
        key = rollup_key(res, slot)
        wrote = False
        for name, amount in fields.items():
            if amount:
                batch.hincr(key, name, amount)
                wrote = True
        if wrote:
            batch.expire(key, ttl[res])


# --- reading back ---------------------------------------------------------------------------------

# What a field adds to: (operation, system or "" for an operation counter, kind, bucket index).
_Parsed = tuple[str, str, str, int] | None


@lru_cache(maxsize=16384)
def _parse(name: str) -> _Parsed:
    # Field names repeat across slots and reads: parse each once. Unknown shapes are skipped, so a
    # newer writer's extra fields do not break an older reader.
    parts = name.split(SEP)
    if len(parts) == 2:
        return (parts[0], "", parts[1], -1) if parts[1] else None
    if len(parts) != 3:
        return None
    op, system, kind = parts
    if kind.startswith(LAT):
        rest = kind[len(LAT) :]
        if rest == SUM_FIELD:
            return op, system, "lat_sum", -1
        if rest.isdigit():
            return op, system, "lat", min(int(rest), N_BUCKETS - 1)
        return None
    if kind.startswith(ERR):
        return op, system, ERR + kind[len(ERR) :], -1
    return op, system, kind, -1


def _side(window: OperationWindow, system: str, v2: str, legacy: str) -> WindowStats | None:
    if system == v2:
        return window.v2
    if system == legacy:
        return window.legacy
    return None


def accumulate(window: TrafficWindow, hashes: Iterable[object], systems: tuple[str, str]) -> TrafficWindow:
    """Add rollup hashes (as the store returns them: ``{field: bytes}``, anything else is an
    absent key) into ``window``. ``systems`` is (v2, legacy); other systems are ignored."""
    v2, legacy = systems
    for fields in hashes:
        if not isinstance(fields, dict):
            continue
        for name, raw in fields.items():
            parsed = _parse(name)
            if parsed is None:
                continue
            with contextlib.suppress(ValueError):  # one unreadable field, not the whole window
                _add(window, parsed, raw, v2, legacy)
    return window


def _add(window: TrafficWindow, parsed: tuple[str, str, str, int], raw: bytes, v2: str, legacy: str) -> None:
    op, system, kind, index = parsed
    entry = window.operations.get(op)
    if entry is None:  # an operation this version does not know still adds up
        entry = window.operations[op] = OperationWindow()
    if not system:
        n = int(float(raw))
        if kind == FALLBACKS:
            entry.fallbacks += n
        elif kind == TOTAL_FAILURES:
            entry.total_failures += n
        elif kind == CACHE_HIT:
            entry.cache_hits += n
            entry.cache_lookups += n
        elif kind == CACHE_MISS:
            entry.cache_lookups += n
        return
    stats = _side(entry, system, v2, legacy)
    if stats is None:
        return
    if kind == "lat":
        n = int(raw)
        stats.latency.counts[index] += n
        stats.latency.total += n
    elif kind == "lat_sum":
        stats.latency.sum_ms += float(raw)
    elif kind == "count":
        stats.requests += int(raw)
    elif kind == "errors":
        stats.errors += int(raw)
    elif kind == "total_ms":
        stats.total_latency_ms += float(raw)
    elif kind.startswith(ERR):
        error = kind[len(ERR) :]
        stats.error_types[error] = stats.error_types.get(error, 0) + int(raw)


def read_batch(slots: Sequence[Slot]) -> Batch:
    batch = Batch()
    for res, slot in slots:
        batch.hgetall(rollup_key(res, slot))
    return batch
