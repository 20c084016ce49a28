"""Latency histograms, windowed request counters and the tests the regression detector needs.

Pure: standard library and ``math`` only, no clock, no I/O, so every number here can be checked
exactly in a unit test and the same code runs in the request path, the flusher and the dashboard.

**Histogram.** A fixed set of log-spaced buckets (upper bounds ``1.1**i`` ms, from 1 ms to just over
120 s, plus one overflow bucket): 125 buckets whose *indices* are the storage format. Because every
process uses the same bounds, histograms merge by adding counts (across processes, hours and
machines) with no loss, which neither a stored sum (the seed) nor a sample reservoir gives. The price
is resolution: a reported percentile is the upper bound of the bucket holding it, so it is at most
10 % above the exact value and never below it.

**Tests.** One-sided by design: the question is always "is v2 worse than legacy?".

* :func:`fisher_exact_greater` - exact test on a 2x2 table. At 1 % rollout the v2 side has few
  errors, where the normal approximation is badly anti-conservative (1 error in 500 v2 requests vs
  0 in 5000 legacy gives z-test p = 0.0008, the exact p is 0.09).
* :func:`two_proportion_z_test` - the textbook pooled z-test, for reporting and large counts.
* :func:`mann_whitney_greater` - the rank-sum test on two histograms, each bucket a tie group.
* :func:`quantile_exceedance_test` - "does v2 exceed the pooled q-quantile more often?": the
  test that matches a p95 criterion (a tail regression with an unchanged median is what a p95
  target exists to catch, and a rank test has little power for it).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

GROWTH = 1.1  # each bucket is 10 % wider than the one below: percentiles exact to 10 %
MIN_MS = 1.0
MAX_MS = 120_000.0
# Upper bounds of the finite buckets: 1.1**0 = 1 ms .. the first power of 1.1 >= 120 s (~123.4 s).
BOUNDS_MS: tuple[float, ...] = tuple(
    MIN_MS * GROWTH**i for i in range(math.ceil(math.log(MAX_MS / MIN_MS) / math.log(GROWTH)) + 1)
)
OVERFLOW = len(BOUNDS_MS)  # index of the bucket above the last bound
N_BUCKETS = OVERFLOW + 1
SUM_FIELD = "sum_ms"  # the one non-bucket field of a stored histogram

FieldValue = bytes | str | int | float


def bucket_index(ms: float) -> int:
    """The bucket holding ``ms``: the first one whose upper bound is >= ``ms`` (<= 1 ms is 0)."""
    return bisect_left(BOUNDS_MS, ms)


def upper_bound_ms(index: int) -> float:
    """What a bucket reports: its upper bound; the overflow bucket reports the last finite bound
    (so a percentile there means "at least ~123 s"), which keeps every figure a finite number."""
    return BOUNDS_MS[min(index, OVERFLOW - 1)]


def nearest_rank(q: float, n: int) -> int:
    """The 1-based nearest-rank position of quantile ``q`` among ``n`` sorted values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0..1, got {q!r}")
    # round(): 0.95 * 100 is 95.00000000000001 in binary floating point, which ceil() makes 96.
    return max(1, math.ceil(round(q * n, 9)))


class LatencyHistogram:
    """Counts per fixed bucket plus the exact sum; mergeable, serialisable to a hash."""

    __slots__ = ("counts", "sum_ms", "total")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * N_BUCKETS
        self.total = 0
        self.sum_ms = 0.0

    def add(self, ms: float, n: int = 1) -> None:
        """Record ``n`` observations of ``ms`` (negative values count as 0 ms; NaN and infinity are
        refused, because one would poison every stored sum it is ever merged into)."""
        if not math.isfinite(ms):
            raise ValueError(f"latency is not a finite number: {ms!r}")
        ms = max(0.0, ms)
        self.counts[bisect_left(BOUNDS_MS, ms)] += n
        self.total += n
        self.sum_ms += ms * n

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other`` into this histogram (in place) and return self."""
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.total += other.total
        self.sum_ms += other.sum_ms
        return self

    def copy(self) -> LatencyHistogram:
        return LatencyHistogram().merge(self)

    @property
    def count(self) -> int:
        return self.total

    @property
    def sum(self) -> float:
        return self.sum_ms

    @property
    def mean(self) -> float | None:
        return self.sum_ms / self.total if self.total else None

    def percentile_index(self, q: float) -> int | None:
        """The bucket holding the nearest-rank ``q`` quantile, None when empty."""
        if not self.total:
            return None
        rank = nearest_rank(q, self.total)
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return i
        raise AssertionError("counts do not add up to total")  # only if someone edited counts

    def percentile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (0..1) as its bucket's upper bound (see
        :func:`upper_bound_ms`): within one bucket of, and never below, the exact value."""
        index = self.percentile_index(q)
        return None if index is None else upper_bound_ms(index)

    def count_above(self, index: int) -> int:
        """Observations in buckets strictly above ``index``."""
        return sum(self.counts[index + 1 :])

    def to_fields(self) -> dict[str, int | float]:
        """``{str(bucket index): count}`` for the non-empty buckets, plus ``sum_ms``: the shape of
        a hash the flusher can HINCRBY field by field (so two writers add up instead of racing)."""
        out: dict[str, int | float] = {str(i): c for i, c in enumerate(self.counts) if c}
        if self.total:
            out[SUM_FIELD] = self.sum_ms
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, FieldValue]) -> LatencyHistogram:
        """The inverse of :meth:`to_fields` (values may be the raw bytes a store returns). Other
        fields are ignored; an index beyond this version's buckets lands in the overflow bucket.
        Raises ValueError on a count that is not a non-negative integer."""
        hist = cls()
        for name, raw in fields.items():
            if name == SUM_FIELD:
                hist.sum_ms += _as_float(raw, name)
            elif name.isdigit():
                count = _as_count(raw, name)
                hist.counts[min(int(name), OVERFLOW)] += count
                hist.total += count
        return hist

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LatencyHistogram)
            and self.counts == other.counts
            and math.isclose(self.sum_ms, other.sum_ms, rel_tol=1e-9, abs_tol=1e-9)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self.total}, p50={self.percentile(0.5)}, p95={self.percentile(0.95)})"
        )


def _as_float(raw: FieldValue, name: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"histogram field {name!r} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"histogram field {name!r} is not finite")
    return value


def _as_count(raw: FieldValue, name: str) -> int:
    value = _as_float(raw, name)
    if value < 0 or not value.is_integer():
        raise ValueError(f"histogram field {name!r} is not a count: {raw!r}")
    return int(value)


@dataclass
class WindowStats:
    """Requests of one (operation, system) over a window: counts, error types, and the latency of
    the *successful* ones (a fast failure must not make a system look faster; failures are judged
    by the error rate). ``total_latency_ms`` covers every request, as the seed's sum did."""

    requests: int = 0
    errors: int = 0
    total_latency_ms: float = 0.0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    error_types: dict[str, int] = field(default_factory=dict)

    def add(self, duration_ms: float, success: bool, error_type: str | None = None) -> None:
        self.requests += 1
        timed = math.isfinite(duration_ms)  # NaN/inf: counted as a request, kept out of every sum
        if timed:
            self.total_latency_ms += max(0.0, duration_ms)
        if success:
            if timed:
                self.latency.add(duration_ms)
        else:
            self.errors += 1
            kind = error_type or "unknown"
            self.error_types[kind] = self.error_types.get(kind, 0) + 1

    def merge(self, other: WindowStats) -> WindowStats:
        self.requests += other.requests
        self.errors += other.errors
        self.total_latency_ms += other.total_latency_ms
        self.latency.merge(other.latency)
        for kind, n in other.error_types.items():
            self.error_types[kind] = self.error_types.get(kind, 0) + n
        return self

    @property
    def successes(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


# --- tests -------------------------------------------------------------------------------------


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _check_counts(k: int, n: int, what: str) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"{what}: need 0 <= events <= trials, got {k} of {n}")


def two_proportion_z_test(errors_a: int, n_a: int, errors_b: int, n_b: int) -> tuple[float, float]:
    """Pooled z-test that a's rate is higher than b's: ``(z, one-sided p)``. With no data on either
    side, or no variation at all (pooled rate 0 or 1), there is no evidence: ``(0.0, 1.0)``."""
    _check_counts(errors_a, n_a, "a")
    _check_counts(errors_b, n_b, "b")
    if not n_a or not n_b:
        return 0.0, 1.0
    pooled = (errors_a + errors_b) / (n_a + n_b)
    variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if variance <= 0.0:
        return 0.0, 1.0
    z = (errors_a / n_a - errors_b / n_b) / math.sqrt(variance)
    return z, normal_sf(z)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact_greater(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float:
    """One-sided Fisher exact p that a's rate is higher than b's: P(X >= errors_a) for X
    hypergeometric (``n_a`` draws from ``n_a + n_b`` with ``errors_a + errors_b`` marked).

    Sums pmf terms by their ratio recurrence from the observed cell towards the nearer tail and stops
    once terms no longer change the sum, so it costs a few hundred steps even for 10^6 requests."""
    _check_counts(errors_a, n_a, "a")
    _check_counts(errors_b, n_b, "b")
    total, marked, draws = n_a + n_b, errors_a + errors_b, n_a
    lo, hi = max(0, draws - (total - marked)), min(marked, draws)
    if marked == 0 or errors_a <= lo:
        return 1.0
    log_norm = _log_comb(total, draws)

    def pmf(k: int) -> float:
        return math.exp(_log_comb(marked, k) + _log_comb(total - marked, draws - k) - log_norm)

    mode = (draws + 1) * (marked + 1) // (total + 2)
    if errors_a > mode:  # upper tail directly: P(X >= x)
        k, term, acc = errors_a, pmf(errors_a), 0.0
        while k <= hi:
            acc += term
            if term <= acc * 1e-17:
                break
            term *= (marked - k) * (draws - k) / ((k + 1) * (total - marked - draws + k + 1))
            k += 1
        return min(1.0, acc)
    # Near or below the mode the upper tail is most of the mass: 1 - P(X <= x - 1), summed downwards.
    k, term, acc = errors_a - 1, pmf(errors_a - 1), 0.0
    while k >= lo:
        acc += term
        if term <= acc * 1e-17:
            break
        term *= k * (total - marked - draws + k) / ((marked - k + 1) * (draws - k + 1))
        k -= 1
    return min(1.0, max(0.0, 1.0 - acc))


def mann_whitney_greater(a: LatencyHistogram, b: LatencyHistogram) -> tuple[float, float]:
    """Mann–Whitney U on two histograms, testing that a's values tend to be larger than b's:
    ``(z, one-sided p)`` by the normal approximation with the tie correction (every bucket is one
    tie group) and a continuity correction. ``(0.0, 1.0)`` when either side is empty or all tie."""
    n1, n2 = a.total, b.total
    if not n1 or not n2:
        return 0.0, 1.0
    u = 0.0
    below_b = 0
    ties = 0
    for ca, cb in zip(a.counts, b.counts, strict=True):
        if ca:
            u += ca * (below_b + cb / 2.0)
        below_b += cb
        t = ca + cb
        ties += t * t * t - t
    n = n1 + n2
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0.0:
        return 0.0, 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return z, normal_sf(z)


def quantile_exceedance_test(a: LatencyHistogram, b: LatencyHistogram, q: float) -> tuple[int, int, float]:
    """Do a's values exceed the *pooled* q-quantile bucket more often than b's? Returns
    ``(a above, b above, one-sided Fisher p)``. The threshold comes from both samples together so
    that, when a and b share one distribution, the split of exceedances is exactly hypergeometric
    (taking b's own quantile would make b's share biased low and the test anti-conservative)."""
    if not a.total or not b.total:
        return 0, 0, 1.0
    index = LatencyHistogram().merge(a).merge(b).percentile_index(q)
    assert index is not None
    above_a, above_b = a.count_above(index), b.count_above(index)
    return above_a, above_b, fisher_exact_greater(above_a, a.total, above_b, b.total)
