"""Nested time buckets: which stored slots make up a window ``[since, until)``.

Counters are kept at several resolutions at once (the migration metrics: fine, minute, hour, day),
one counter set per *slot* ``(resolution, index)`` covering ``[index * resolution, (index + 1) *
resolution)``. Every resolution divides the next one, so a slot of one tier is exactly tiled by
slots of the finer tiers, and any window aligned to the finest resolution is an exact union of
slots. :func:`cover` picks the coarsest slots that fit inside the window and finer ones only at its
edges, so reading a window costs a number of slots that depends on the tiers, never on traffic:

    at most ``2 * sum(R[k+1] / R[k] - 1 for the finer tiers) + span / R[-1] + 1`` slots

(tiers 1 s, 60 s, 3600 s, 86400 s: 59 + 59 + 23 per edge, plus one per day: 298 for 15 days).

Edges. The window is first aligned to the finest resolution ``r``: it covers
``[ceil_r(since), ceil_r(until))``. A slot that *starts* before ``since`` is left out (it mixes in
traffic from before the window, e.g. the previous rollout phase) and the slot holding ``until``
is included (with ``until = now`` it is the current, partial slot: the newest traffic counts).

Retention. Each tier keeps its slots for a retention of its own (finer tiers for less time). A slot
whose start is older than its tier's retention may have expired, so it is replaced by the enclosing
slot of the next coarser tier that is still kept; that widens the window outward, by less than one
coarser slot, at the edge that is that old (only the ``since`` edge, in practice). Past the coarsest
tier's retention nothing is left, and that part of the window reads as empty.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Slot = tuple[int, int]  # (resolution in seconds, index): covers [index * res, (index + 1) * res)

MINUTE = 60
HOUR = 3600
DAY = 86400


def slot_of(ts: float, resolution: int) -> int:
    return int(ts // resolution)


def tiers_for(resolution_s: int) -> tuple[int, ...]:
    """The nested tiers for a configured finest resolution: the resolution itself (rounded down to
    the nearest one that divides the minute, or the hour above a minute, so that tiers nest), then
    minute, hour and day, each only when coarser than the one before."""
    if resolution_s < 1:
        raise ValueError(f"resolution must be >= 1 s, got {resolution_s!r}")
    if resolution_s < MINUTE:
        fine = max(d for d in range(1, resolution_s + 1) if MINUTE % d == 0)
    elif resolution_s < HOUR:
        fine = max(d for d in range(MINUTE, resolution_s + 1, MINUTE) if HOUR % d == 0)
    else:
        fine = HOUR
    return tuple(sorted({fine, MINUTE, HOUR, DAY} - {t for t in (MINUTE, HOUR) if t < fine}))


def check_tiers(resolutions: Sequence[int], retentions: Sequence[float]) -> None:
    if not resolutions or len(resolutions) != len(retentions):
        raise ValueError("need one retention per resolution, and at least one of each")
    for finer, coarser in itertools.pairwise(resolutions):
        if finer < 1 or coarser <= finer or coarser % finer:
            raise ValueError(f"tiers must grow and nest (each divides the next): {tuple(resolutions)}")
    for finer_r, coarser_r in itertools.pairwise(retentions):
        if coarser_r < finer_r:
            raise ValueError("a coarser tier must be kept at least as long as a finer one")


def _split(lo: int, hi: int, resolutions: Sequence[int], k: int, out: list[Slot]) -> None:
    """Append the slots tiling ``[lo, hi)`` (multiples of the finest resolution) using tiers 0..k,
    coarsest first in the middle, in time order."""
    res = resolutions[k]
    if k == 0:
        out.extend((res, i) for i in range(lo // res, hi // res))
        return
    first = -(-lo // res)  # ceil
    last = hi // res
    if first >= last:
        _split(lo, hi, resolutions, k - 1, out)
        return
    _split(lo, first * res, resolutions, k - 1, out)
    out.extend((res, i) for i in range(first, last))
    _split(last * res, hi, resolutions, k - 1, out)


def cover(
    since: float,
    until: float,
    resolutions: Sequence[int],
    *,
    now: float,
    retentions: Sequence[float],
) -> list[Slot]:
    """The slots to read for ``[since, until)``, in time order, none overlapping another (see the
    module docstring for the edges and retention). ``resolutions`` are the tiers, finest first, each
    dividing the next; ``retentions[k]`` is how long tier k's slots are kept (seconds, not
    decreasing). ``until`` is clipped to one coarsest slot past ``now`` (nothing is recorded later)
    and ``since`` to the coarsest retention (nothing older is kept), which bounds the slot count."""
    check_tiers(resolutions, retentions)
    if not (math.isfinite(since) and math.isfinite(until) and math.isfinite(now)):
        raise ValueError("since, until and now must be finite")
    fine, top = resolutions[0], len(resolutions) - 1
    oldest = now - retentions[top] - resolutions[top]
    until = min(until, now + resolutions[top])
    lo = math.ceil(max(since, oldest) / fine) * fine
    hi = math.ceil(until / fine) * fine
    if lo >= hi:
        return []
    slots: list[Slot] = []
    _split(lo, hi, resolutions, top, slots)
    tier = {res: k for k, res in enumerate(resolutions)}
    out: list[Slot] = []
    seen: set[Slot] = set()
    widened = False
    for res, index in slots:
        k = tier[res]
        start = index * res
        while start < now - retentions[k]:  # may have expired: read the enclosing slot instead
            k += 1
            if k > top:
                break
            res = resolutions[k]
            index = start // res
            start = index * res
            widened = True
        if k > top or (res, index) in seen:
            continue  # older than anything kept, or already read for a neighbour
        seen.add((res, index))
        out.append((res, index))
    if not widened:
        return out  # nothing widened (the usual case): the slots tile the window exactly
    # A widened slot may enclose finer ones kept for the same edge: read each instant once.
    return [(res, index) for res, index in out if not _inside_another(res, index, seen, resolutions)]


def _inside_another(res: int, index: int, chosen: set[Slot], resolutions: Sequence[int]) -> bool:
    start = index * res
    return any((coarser, start // coarser) in chosen for coarser in resolutions if coarser > res)


def span(slots: Sequence[Slot]) -> tuple[float, float] | None:
    """``(start, end)`` of the time the slots cover, None for no slot."""
    if not slots:
        return None
    return (
        float(min(index * res for res, index in slots)),
        float(max((index + 1) * res for res, index in slots)),
    )
