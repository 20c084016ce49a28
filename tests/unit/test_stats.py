"""core.stats: histogram percentiles against exact ones, merging, storage round trips, and each
test against an independent computation (brute-force combinatorics, ranks of raw values)."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest

from voxshift.core.stats import (
    BOUNDS_MS,
    GROWTH,
    N_BUCKETS,
    OVERFLOW,
    SUM_FIELD,
    LatencyHistogram,
    WindowStats,
    bucket_index,
    fisher_exact_greater,
    mann_whitney_greater,
    nearest_rank,
    normal_sf,
    quantile_exceedance_test,
    two_proportion_z_test,
    upper_bound_ms,
)


def hist_of(values: list[float]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    return hist


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[nearest_rank(q, len(ordered)) - 1]


# --- buckets ---------------------------------------------------------------------------------------


def test_bounds_span_1ms_to_120s_at_10_percent() -> None:
    assert BOUNDS_MS[0] == 1.0
    assert BOUNDS_MS[-2] < 120_000 <= BOUNDS_MS[-1]
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(BOUNDS_MS)}
    assert ratios == {GROWTH}
    assert N_BUCKETS == len(BOUNDS_MS) + 1 == 125


@pytest.mark.parametrize("ms", [0.0, 0.3, 1.0, 1.05, 1.1, 57.0, 999.9, 1000.0, 119_999.0])
def test_a_value_lands_in_the_bucket_whose_bounds_enclose_it(ms: float) -> None:
    i = bucket_index(ms)
    assert ms <= BOUNDS_MS[i]
    assert i == 0 or BOUNDS_MS[i - 1] < ms


def test_values_past_the_top_go_to_overflow_and_report_the_top_bound() -> None:
    hist = hist_of([500_000.0, 1e9])
    assert hist.counts[OVERFLOW] == 2
    assert hist.percentile(0.5) == upper_bound_ms(OVERFLOW) == BOUNDS_MS[-1]


def test_negative_counts_as_zero_and_nan_or_infinity_is_refused() -> None:
    hist = hist_of([-5.0])
    assert hist.counts[0] == 1 and hist.sum == 0.0
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            hist.add(bad)
    assert hist.count == 1


# --- percentiles -----------------------------------------------------------------------------------


def test_nearest_rank_is_not_fooled_by_binary_floating_point() -> None:
    assert nearest_rank(0.95, 100) == 95  # 0.95 * 100 == 95.00000000000001
    assert nearest_rank(0.5, 1) == 1
    assert nearest_rank(0.0, 10) == 1
    assert nearest_rank(1.0, 10) == 10
    with pytest.raises(ValueError):
        nearest_rank(1.5, 10)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 1.0])
def test_percentiles_are_within_one_bucket_of_the_exact_ones(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(6.5, 0.8) for _ in range(rng.randrange(1, 5000))]
    exact = exact_percentile(values, q)
    reported = LatencyHistogram()
    for v in values:
        reported.add(v)
    p = reported.percentile(q)
    assert p is not None
    # The exact value is in the reported bucket: never above its bound, above the bound below it.
    assert p / GROWTH < exact <= p


def test_known_percentiles_and_mean() -> None:
    hist = hist_of([float(ms) for ms in range(1, 101)])  # 1..100 ms
    assert hist.count == 100 and hist.sum == 5050.0 and hist.mean == 50.5
    assert hist.percentile_index(0.95) == bucket_index(95.0)
    assert hist.percentile(0.5) == upper_bound_ms(bucket_index(50.0))
    assert LatencyHistogram().percentile(0.5) is None and LatencyHistogram().mean is None


# --- merge and storage -----------------------------------------------------------------------------


def test_merge_equals_the_histogram_of_all_values() -> None:
    rng = random.Random(7)
    a = [rng.expovariate(1 / 300) for _ in range(1000)]
    b = [rng.expovariate(1 / 900) for _ in range(700)]
    merged = hist_of(a).merge(hist_of(b))
    assert merged == hist_of(a + b)
    assert merged.count == 1700
    assert merged.percentile(0.95) == hist_of(a + b).percentile(0.95)
    copy = merged.copy()
    copy.add(5.0)
    assert copy.count == 1701 and merged.count == 1700  # a copy, not a view


def test_fields_round_trip_including_raw_bytes_from_a_store() -> None:
    hist = hist_of([0.5, 3.0, 3.1, 250.0, 250.0, 1e7])
    fields = hist.to_fields()
    assert fields[SUM_FIELD] == pytest.approx(hist.sum)
    assert all(k == SUM_FIELD or int(k) < N_BUCKETS for k in fields)
    assert sum(v for k, v in fields.items() if k != SUM_FIELD) == 6
    assert LatencyHistogram.from_fields(fields) == hist
    as_bytes = {k: str(v).encode() for k, v in fields.items()}
    assert LatencyHistogram.from_fields(as_bytes) == hist
    assert LatencyHistogram().to_fields() == {}


def test_from_fields_ignores_other_fields_clamps_unknown_buckets_and_rejects_garbage() -> None:
    hist = LatencyHistogram.from_fields({"count": b"9", "999": b"2", "3": b"1"})
    assert hist.counts[OVERFLOW] == 2 and hist.counts[3] == 1 and hist.count == 3
    for bad in (b"x", b"-1", b"1.5", b"nan"):
        with pytest.raises(ValueError):
            LatencyHistogram.from_fields({"3": bad})


def test_window_stats_counts_errors_and_keeps_failures_out_of_the_latency() -> None:
    stats = WindowStats()
    stats.add(100.0, True)
    stats.add(5.0, False, "timeout")
    stats.add(7.0, False, "timeout")
    stats.add(9.0, False)
    stats.add(math.nan, True)  # counted, but never in a sum
    stats.add(math.inf, True)
    assert (stats.requests, stats.errors, stats.successes) == (6, 3, 3)
    assert stats.error_rate == 0.5
    assert stats.latency.count == 1 and stats.total_latency_ms == 121.0
    assert stats.error_types == {"timeout": 2, "unknown": 1}
    other = WindowStats()
    other.add(50.0, False, "timeout")
    stats.merge(other)
    assert stats.requests == 7 and stats.error_types["timeout"] == 3
    assert WindowStats().error_rate is None


# --- tests -----------------------------------------------------------------------------------------


def test_two_proportion_z_test_known_case() -> None:
    z, p = two_proportion_z_test(30, 100, 20, 100)
    assert z == pytest.approx(1.63299, abs=1e-5)
    assert p == pytest.approx(0.051235, abs=1e-5)
    z, p = two_proportion_z_test(20, 100, 30, 100)
    assert z == pytest.approx(-1.63299, abs=1e-5) and p == pytest.approx(1 - 0.051235, abs=1e-5)
    assert two_proportion_z_test(0, 100, 0, 100) == (0.0, 1.0)
    assert two_proportion_z_test(0, 0, 3, 10) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_z_test(5, 4, 0, 10)


def fisher_brute_force(xa: int, na: int, xb: int, nb: int) -> float:
    total, marked = na + nb, xa + xb
    tail = sum(
        Fraction(math.comb(marked, k) * math.comb(total - marked, na - k))
        for k in range(xa, min(marked, na) + 1)
    )
    return float(tail / math.comb(total, na))


@pytest.mark.parametrize(
    "table",
    [
        (10, 100, 5, 100),
        (1, 500, 0, 5000),
        (0, 50, 3, 50),
        (3, 3, 0, 10),
        (7, 40, 7, 40),
        (2, 20, 9, 30),
        (25, 200, 4, 300),
        (60, 1000, 100, 5000),
    ],
)
def test_fisher_matches_brute_force_combinatorics(table: tuple[int, int, int, int]) -> None:
    assert fisher_exact_greater(*table) == pytest.approx(fisher_brute_force(*table), rel=1e-9, abs=1e-15)


def test_fisher_is_honest_where_the_z_test_is_not() -> None:
    # 1 error in 500 v2 requests vs none in 5000 legacy: the z-test calls it significant.
    assert two_proportion_z_test(1, 500, 0, 5000)[1] < 0.001
    assert fisher_exact_greater(1, 500, 0, 5000) == pytest.approx(500 / 5500)
    assert fisher_exact_greater(0, 10, 0, 10) == 1.0
    # Huge tables stay fast and finite.
    assert fisher_exact_greater(5000, 100_000, 4000, 100_000) < 1e-20
    assert 0.45 < fisher_exact_greater(4000, 100_000, 4000, 100_000) < 0.55


def rank_sum_z(a: list[float], b: list[float]) -> float:
    """Mann–Whitney z computed from average ranks of the raw values (the textbook route)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks: list[float] = [0.0] * len(pooled)
    ties = 0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    n = n1 + n2
    u = sum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 0) - n1 * (n1 + 1) / 2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    return (u - n1 * n2 / 2 - 0.5) / sd


def test_mann_whitney_on_histograms_matches_ranks_of_bucketed_values() -> None:
    rng = random.Random(3)
    a = [rng.lognormvariate(5.2, 0.6) for _ in range(400)]
    b = [rng.lognormvariate(5.0, 0.6) for _ in range(900)]
    # The histogram sees bucket bounds, so rank the values as the histogram does: by bucket.
    expected = rank_sum_z(
        [upper_bound_ms(bucket_index(v)) for v in a], [upper_bound_ms(bucket_index(v)) for v in b]
    )
    z, p = mann_whitney_greater(hist_of(a), hist_of(b))
    assert z == pytest.approx(expected, rel=1e-9)
    assert p == pytest.approx(normal_sf(expected))
    assert p < 1e-6  # a is shifted up by e^0.2
    z_rev, p_rev = mann_whitney_greater(hist_of(b), hist_of(a))
    assert z_rev < 0 and p_rev > 0.99


def test_mann_whitney_degenerate_cases() -> None:
    assert mann_whitney_greater(LatencyHistogram(), hist_of([1.0])) == (0.0, 1.0)
    assert mann_whitney_greater(hist_of([10.0] * 5), hist_of([10.0] * 5)) == (0.0, 1.0)  # all tied


def test_quantile_exceedance_sees_a_tail_regression_with_the_same_median() -> None:
    rng = random.Random(11)
    legacy = [rng.lognormvariate(6.0, 0.3) for _ in range(3000)]
    v2 = [rng.lognormvariate(6.0, 0.3) for _ in range(2700)] + [rng.uniform(3000, 6000) for _ in range(300)]
    h_v2, h_legacy = hist_of(v2), hist_of(legacy)
    assert h_v2.percentile(0.5) == pytest.approx(h_legacy.percentile(0.5), rel=0.11)
    above_v2, above_legacy, p = quantile_exceedance_test(h_v2, h_legacy, 0.95)
    assert above_v2 > 2 * above_legacy and p < 1e-9
    # The same samples the other way round: nothing to see.
    assert quantile_exceedance_test(h_legacy, h_v2, 0.95)[2] > 0.5
    assert quantile_exceedance_test(LatencyHistogram(), h_legacy, 0.95) == (0, 0, 1.0)
