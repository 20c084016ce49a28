"""core.time_buckets: which stored slots make up a window - exact tiling, coarsest slots inside,
a bounded slot count for any window, and what happens at the edges and past each tier's retention."""

from __future__ import annotations

import math
import random

import pytest

from voxshift.core.time_buckets import DAY, HOUR, MINUTE, Slot, check_tiers, cover, span, tiers_for

TIERS = (1, MINUTE, HOUR, DAY)
KEEP_ALL = (1e12, 1e12, 1e12, 1e12)  # retention out of the way
NOW = 1_800_000_000.0  # a day boundary (NOW % 86400 == 0)
RETENTIONS = (2 * DAY, 15 * DAY, 15 * DAY, 15 * DAY)


def tiles(slots: list[Slot], start: float, end: float) -> bool:
    """Whether the slots, in the order given, cover [start, end) exactly once: each one starts where
    the one before ended (no gap, no overlap)."""
    at = start
    for res, index in slots:
        if index * res != at:
            return False
        at = (index + 1) * res
    return at == end


def test_tiers_nest_whatever_resolution_is_configured() -> None:
    assert tiers_for(1) == (1, 60, 3600, 86400)
    assert tiers_for(10) == (10, 60, 3600, 86400)
    assert tiers_for(7) == (6, 60, 3600, 86400)  # rounded down to a divisor of the minute
    assert tiers_for(45) == (30, 60, 3600, 86400)
    assert tiers_for(60) == (60, 3600, 86400)
    assert tiers_for(100) == (60, 3600, 86400)
    assert tiers_for(900) == (900, 3600, 86400)
    assert tiers_for(3600) == (3600, 86400)
    for resolution in range(1, 3601):
        tiers = tiers_for(resolution)
        check_tiers(tiers, [1.0] * len(tiers))  # grows, each divides the next
        assert tiers[0] <= resolution
    with pytest.raises(ValueError):
        tiers_for(0)


def test_bad_tiers_are_refused() -> None:
    with pytest.raises(ValueError, match="nest"):
        check_tiers((7, 60), (1, 1))
    with pytest.raises(ValueError, match="nest"):
        check_tiers((60, 60), (1, 1))
    with pytest.raises(ValueError, match="kept"):
        check_tiers((1, 60), (100, 10))
    with pytest.raises(ValueError, match="one retention"):
        check_tiers((1, 60), (100,))
    with pytest.raises(ValueError, match="finite"):
        cover(math.nan, NOW, TIERS, now=NOW, retentions=KEEP_ALL)


def test_an_aligned_hour_is_one_slot_and_edges_use_finer_ones() -> None:
    hour = int(NOW // HOUR) - 5
    assert cover(hour * HOUR, (hour + 1) * HOUR, TIERS, now=NOW, retentions=KEEP_ALL) == [(HOUR, hour)]
    # 10:59:58 .. 12:00:02 -> 2 seconds, one hour, 2 seconds.
    slots = cover(hour * HOUR - 2, (hour + 1) * HOUR + 2, TIERS, now=NOW, retentions=KEEP_ALL)
    assert slots == [
        (1, hour * HOUR - 2),
        (1, hour * HOUR - 1),
        (HOUR, hour),
        (1, (hour + 1) * HOUR),
        (1, (hour + 1) * HOUR + 1),
    ]


def test_edges_are_aligned_since_up_and_until_up_to_its_slot_end() -> None:
    # [100.5, 105.3) at 1 s: slot 100 mixes in traffic from before `since` (left out); slot 105 holds
    # `until` (kept: with until = now it is the current, partial second).
    slots = cover(NOW - 99.5, NOW - 94.7, TIERS, now=NOW, retentions=KEEP_ALL)
    assert slots == [(1, int(NOW) - 99 + i) for i in range(5)]
    assert span(slots) == (NOW - 99, NOW - 94)
    assert cover(NOW - 10.2, NOW - 10.1, TIERS, now=NOW, retentions=KEEP_ALL) == []  # inside one slot
    assert cover(NOW - 5, NOW - 5, TIERS, now=NOW, retentions=KEEP_ALL) == []
    assert cover(NOW, NOW - 100, TIERS, now=NOW, retentions=KEEP_ALL) == []
    assert span([]) is None


@pytest.mark.parametrize("seed", range(5))
def test_random_windows_are_tiled_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        length = rng.choice([1, 59, 61, 3599, 3601, 86399, 90_000, 14 * DAY]) * rng.random() * 2
        until = NOW - rng.random() * DAY
        since = until - length
        slots = cover(since, until, TIERS, now=NOW, retentions=KEEP_ALL)
        assert tiles(slots, math.ceil(since), math.ceil(until)), (since, until)
        # Coarsest-first: no run of finer slots that a coarser aligned slot would cover.
        chosen = set(slots)
        for res, index in slots:
            for coarser in (t for t in TIERS if t > res):
                parent = index * res // coarser
                inside = parent * coarser >= math.ceil(since) and (parent + 1) * coarser <= math.ceil(until)
                assert not inside or (coarser, parent) in chosen, (res, index, coarser)


def test_a_14_day_window_reads_a_bounded_number_of_slots() -> None:
    worst = 0
    for offset in (0.0, 0.5, 1.5, 59.5, 3599.5, 43_200.7, 86_399.5):
        slots = cover(NOW - 14 * DAY - offset, NOW - offset / 3, TIERS, now=NOW, retentions=RETENTIONS)
        worst = max(worst, len(slots))
    # <= 59 + 59 + 23 per edge, plus one per day: the bound of the module docstring.
    assert worst <= 2 * (59 + 59 + 23) + 15
    # The 10 s tiers the settings default to: fewer at the fine edges.
    tiers = tiers_for(10)
    slots = cover(NOW - 14 * DAY - 86_399.5, NOW - 1, tiers, now=NOW, retentions=RETENTIONS)
    assert len(slots) <= 2 * (5 + 59 + 23) + 15
    # Far-off bounds are clipped: nothing is kept before the coarsest retention or recorded ahead.
    assert len(cover(0.0, 1e15, TIERS, now=NOW, retentions=RETENTIONS)) <= 2 * (59 + 59 + 23) + 18


def test_slots_past_their_retention_become_the_enclosing_coarser_slot() -> None:
    minute = int(NOW // MINUTE) - 3 * 1440  # three days ago: past the 2-day fine retention
    since = minute * MINUTE + 20.0
    slots = cover(since, NOW - 30, TIERS, now=NOW, retentions=RETENTIONS)
    # The 40 seconds at the start are read as their whole minute (widened by 20 s), once.
    assert slots[0] == (MINUTE, minute)
    assert span(slots) == (minute * MINUTE, NOW - 30)
    assert tiles(slots, minute * MINUTE, NOW - 30)  # no overlap
    assert all(res != 1 or index * res >= NOW - RETENTIONS[0] for res, index in slots)

    # When the fine retention ends inside the edge minute, the seconds still kept there are not read
    # a second time beside the minute that replaces the expired ones.
    now = NOW + 30
    boundary = now - RETENTIONS[0]  # mid-minute
    slots = cover(boundary - 10, now - 5, TIERS, now=now, retentions=RETENTIONS)
    minute_start = boundary // MINUTE * MINUTE
    assert slots[0] == (MINUTE, minute_start // MINUTE) and (1, boundary) not in slots
    assert tiles(slots, minute_start, now - 5)


def test_nothing_is_read_past_the_coarsest_retention() -> None:
    old = NOW - 20 * DAY
    assert cover(old, old + DAY, TIERS, now=NOW, retentions=RETENTIONS) == []
    # A window reaching into the kept range is read from where retention still holds.
    slots = cover(old, NOW - 14 * DAY, TIERS, now=NOW, retentions=RETENTIONS)
    first = span(slots)
    assert first is not None and first[0] >= NOW - RETENTIONS[-1]
