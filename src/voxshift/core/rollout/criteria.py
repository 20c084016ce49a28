"""Criteria verdicts: each criterion of a phase is ``pass``, ``fail`` or ``pending`` on a window.

A verdict must mean the same thing at 200 requests and at 2 million, so every criterion is judged
by a confidence interval (two-sided, ``confidence`` = 95 % by default), never by a point estimate:

* ``max`` criteria **pass** when the whole interval is under the threshold (upper bound < it) and
  **fail** when the whole interval is over it (lower bound > it); ``min`` criteria the other way.
  Otherwise the data cannot tell yet: **pending**. Fewer than ``min_samples`` samples is always
  pending, whatever the numbers say: never pass, never fail.
* **Operations judged**: the criterion's ``operations``, else every operation the step sends to
  v2 (percentage > 0); one result per operation. An operation the step sends nowhere is skipped.
* **Rates** (Wilson score interval on events / trials, which stays inside 0..1 and is honest with
  zero or few events, where the normal approximation claims certainty it does not have):
  ``error_rate`` = v2 errors / v2 requests (a v2 attempt that fell back to legacy counts as an
  error, as the router records it), ``fallback_rate`` = fallbacks / v2 requests,
  ``cache_hit_rate`` = cache hits / cache lookups.
* ``latency_p95_ms``: "p95 under T" is "fewer than 5 % of requests over T", so the share of
  successful v2 requests over T is tested against 5 % with the same Wilson rule. The latency
  histogram knows a value only to its bucket (~10 %), so the requests in T's own bucket count as
  over T when deciding *pass* and as under T when deciding *fail*: the bucket's uncertainty widens
  the pending band and never turns into a wrong verdict. The value shown is the p95 estimate.
* ``user_feedback`` (ratings of responses v2 served) and ``user_satisfaction`` (ratings of all
  responses, whichever system served them): mean ± t·s/√n with Student's t quantile for n - 1
  degrees of freedom (Cornish-Fisher expansion of the normal quantile, exact for 1 and 2 degrees
  of freedom; within 0.2 % of the table from 3 up), clipped to the 1..5 scale. Samples = ratings;
  at least two are needed for a spread.
* ``latency_ratio_vs_legacy`` / ``error_ratio_vs_legacy``: the :class:`RegressionDetector`'s
  latency (p95 ratio, Fisher exact test on exceedances of the pooled p95) or error check (error
  rate ratio, Fisher exact test) with the criterion's threshold and ``min_samples``. Legacy is
  legacy's traffic in the same window when it has ``min_samples``, else ``baseline`` (legacy over
  the whole rollout so far: at 100 % legacy gets nothing new). The check fires: fail. It ran, did
  not fire and the ratio is within the limit: pass. A ratio over the limit that is not (yet)
  significant is pending rather than pass, like a rate whose interval straddles its threshold.

Evaluation reads aggregates only (counts and histogram buckets), so its cost does not grow with
traffic. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal, Protocol

from voxshift.core.regression import RegressionDetector
from voxshift.core.rollout.plan import Bound, Criterion, Phase, Step
from voxshift.core.rollout.window import SYSTEM_V2, FeedbackWindow, RatingStats, TrafficWindow
from voxshift.core.stats import BOUNDS_MS, WindowStats, bucket_index
from voxshift.core.vocabulary import OPERATIONS, Operation
from voxshift.errors import InvalidRequest

Verdict = Literal["pass", "fail", "pending"]
P95_SHARE = 0.05  # "p95 < T" <=> under 5 % of requests are slower than T
RATING_MIN, RATING_MAX = 1.0, 5.0


@dataclass(frozen=True)
class CriterionResult:
    metric: str
    operation: str | None
    value: float | None  # the point estimate, in the metric's unit (the p95 in ms for latency)
    threshold: float
    bound: Bound
    samples: int
    min_samples: int
    verdict: Verdict
    dry_run: bool
    detail: str  # one sentence for a person, with the interval
    # The confidence bounds the verdict used: of the rate, the mean rating, or (for the p95) of the
    # share of requests over the threshold; None where there are none (ratios, no data).
    lower: float | None = None
    upper: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- statistics -------------------------------------------------------------------------------


def z_quantile(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 95 %."""
    if not 0.0 < confidence < 1.0:
        raise InvalidRequest(f"confidence must be within (0, 1), got {confidence!r}", param="confidence")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(events: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``events / trials``; ``(0, 1)`` when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = z_quantile(confidence)
    p, z2 = min(max(events, 0), trials) / trials, z * z
    denom = 1.0 + z2 / trials
    center = (p + z2 / (2.0 * trials)) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)) / denom
    # At 0 or all events the bound is exactly 0 or 1; the subtraction would leave rounding dust.
    lower = 0.0 if p == 0.0 else max(0.0, center - half)
    return lower, 1.0 if p == 1.0 else min(1.0, center + half)


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student t quantile (2.045 for 95 % and 29 degrees of freedom)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    p = 0.5 + confidence / 2.0
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = z_quantile(confidence)  # Abramowitz & Stegun 26.7.5
    z3, z5, z7, z9 = z**3, z**5, z**7, z**9
    g1 = (z3 + z) / 4.0
    g2 = (5 * z5 + 16 * z3 + 3 * z) / 96.0
    g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384.0
    g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160.0
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def mean_interval(ratings: RatingStats, confidence: float = 0.95) -> tuple[float, float] | None:
    """mean ± t·s/√n on the 1..5 scale; None below two ratings (no spread to measure)."""
    mean, stdev = ratings.mean, ratings.stdev
    if mean is None or stdev is None:
        return None
    half = t_quantile(confidence, ratings.count - 1) * stdev / math.sqrt(ratings.count)
    return max(RATING_MIN, mean - half), min(RATING_MAX, mean + half)


def judge(lower: float, upper: float, threshold: float, bound: Bound) -> Verdict:
    """The interval rule: entirely on the good side passes, entirely on the bad side fails."""
    good, bad = (
        (upper < threshold, lower > threshold) if bound == "max" else (lower > threshold, upper < threshold)
    )
    return "pass" if good else "fail" if bad else "pending"


# --- evaluation -------------------------------------------------------------------------------


def evaluate(
    criterion: Criterion,
    step: Step,
    traffic: TrafficWindow,
    feedback: FeedbackWindow,
    *,
    baseline: TrafficWindow | None = None,
    detector_alpha: float = 0.01,
    confidence: float = 0.95,
) -> list[CriterionResult]:
    """One result per judged operation (see the module doc)."""
    z_quantile(confidence)  # refuse a bad confidence even when nothing is judged
    ops: Sequence[Operation] = criterion.operations or OPERATIONS
    results: list[CriterionResult] = []
    for op in ops:
        if step.percentage(op) <= 0:
            continue
        win = traffic[op]
        metric = criterion.metric
        if metric == "error_rate":
            result = _rate(criterion, op, win.v2.errors, win.v2.requests, "v2 requests", confidence)
        elif metric == "fallback_rate":
            result = _rate(criterion, op, win.fallbacks, win.v2.requests, "v2 requests", confidence)
        elif metric == "cache_hit_rate":
            result = _rate(criterion, op, win.cache_hits, win.cache_lookups, "cache lookups", confidence)
        elif metric == "latency_p95_ms":
            result = _p95(criterion, op, win.v2, confidence)
        elif metric in ("user_feedback", "user_satisfaction"):
            system = SYSTEM_V2 if metric == "user_feedback" else None
            result = _ratings(criterion, op, feedback.of(system, op), confidence)
        else:
            legacy = baseline[op].legacy if baseline is not None else None
            result = _ratio(criterion, op, win.v2, win.legacy, legacy, detector_alpha)
        results.append(result)
    return results


def evaluate_all(
    phase: Phase,
    step: Step,
    traffic: TrafficWindow,
    feedback: FeedbackWindow,
    *,
    baseline: TrafficWindow | None = None,
    detector_alpha: float = 0.01,
    confidence: float = 0.95,
) -> list[CriterionResult]:
    """Every criterion of ``phase`` on ``step``'s window, in the plan's order."""
    out: list[CriterionResult] = []
    for criterion in phase.criteria:
        out += evaluate(
            criterion,
            step,
            traffic,
            feedback,
            baseline=baseline,
            detector_alpha=detector_alpha,
            confidence=confidence,
        )
    return out


class Judged(Protocol):
    @property
    def verdict(self) -> str: ...
    @property
    def dry_run(self) -> bool: ...


def overall(results: Sequence[Judged]) -> Verdict:
    """Dry-run results aside: any fail fails, all pass passes (none at all passes), else pending."""
    acting = [r for r in results if not r.dry_run]
    if any(r.verdict == "fail" for r in acting):
        return "fail"
    return "pass" if all(r.verdict == "pass" for r in acting) else "pending"


# --- one metric on one operation --------------------------------------------------------------

_LABELS = {
    "error_rate": "error rate",
    "fallback_rate": "fallback rate",
    "cache_hit_rate": "cache hit rate",
    "user_feedback": "v2 feedback",
    "user_satisfaction": "satisfaction",
}


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def _ci(confidence: float) -> str:
    return f"{confidence * 100:g}% CI"


def _relation(verdict: Verdict, bound: Bound) -> str:
    if verdict == "pending":
        return "straddles"
    return "<" if (verdict == "pass") == (bound == "max") else ">"


def _result(c: Criterion, op: Operation, **fields: Any) -> CriterionResult:
    return CriterionResult(
        metric=c.metric,
        operation=op,
        threshold=c.threshold,
        bound=c.bound,
        min_samples=c.min_samples,
        dry_run=c.dry_run,
        **fields,
    )


def _rate(c: Criterion, op: Operation, events: int, trials: int, noun: str, conf: float) -> CriterionResult:
    events = min(max(events, 0), trials)
    label = f"{op} {_LABELS[c.metric]}"
    if not trials:
        detail = f"{label}: no {noun} yet, need {c.min_samples}"
        return _result(c, op, value=None, samples=0, verdict="pending", detail=detail)
    value = events / trials
    lower, upper = wilson_interval(events, trials, conf)
    shown = f"{label} {_pct(value)} ({_ci(conf)} {_pct(lower)}-{_pct(upper)})"
    if trials < c.min_samples:
        verdict: Verdict = "pending"
        detail = f"{shown} over {trials} {noun}: too few, need {c.min_samples}"
    else:
        verdict = judge(lower, upper, c.threshold, c.bound)
        detail = f"{shown} {_relation(verdict, c.bound)} {_pct(c.threshold)} over {trials} {noun}"
    return _result(
        c, op, value=value, samples=trials, verdict=verdict, detail=detail, lower=lower, upper=upper
    )


def _p95(c: Criterion, op: Operation, v2: WindowStats, conf: float) -> CriterionResult:
    hist, limit = v2.latency, c.threshold
    n, p95 = hist.count, hist.percentile(0.95)
    label = f"{op} p95"
    if not n:
        detail = f"{label}: no successful v2 requests yet, need {c.min_samples}"
        return _result(c, op, value=None, samples=0, verdict="pending", detail=detail)
    index = bucket_index(limit)
    surely_over = hist.count_above(index)  # buckets wholly above the limit
    # The limit's own bucket straddles it unless the limit is exactly the bucket's upper bound.
    maybe_over = surely_over if BOUNDS_MS[index] == limit else hist.count_above(index - 1) if index else n
    lower = wilson_interval(surely_over, n, conf)[0]
    upper = wilson_interval(maybe_over, n, conf)[1]
    share = (
        f"{_pct(surely_over / n)}"
        if surely_over == maybe_over
        else f"{_pct(surely_over / n)}-{_pct(maybe_over / n)}"
    )
    shown = (
        f"{label} {p95:.0f} ms: {share} of {n} successful v2 requests over {limit:g} ms "
        f"({_ci(conf)} {_pct(lower)}-{_pct(upper)}, exact to a histogram bucket, ~10%)"
    )
    if n < c.min_samples:
        verdict: Verdict = "pending"
        detail = f"{shown}: too few, need {c.min_samples}"
    else:
        verdict = judge(lower, upper, P95_SHARE, "max")
        detail = f"{shown} {_relation(verdict, 'max')} {_pct(P95_SHARE)} allowed"
    return _result(c, op, value=p95, samples=n, verdict=verdict, detail=detail, lower=lower, upper=upper)


def _ratings(c: Criterion, op: Operation, ratings: RatingStats, conf: float) -> CriterionResult:
    label, n, mean = f"{op} {_LABELS[c.metric]}", ratings.count, ratings.mean
    interval = mean_interval(ratings, conf)
    if mean is None or interval is None:
        detail = f"{label}: {n} rating{'s' if n != 1 else ''}, need {max(c.min_samples, 2)}"
        return _result(c, op, value=mean, samples=n, verdict="pending", detail=detail)
    lower, upper = interval
    shown = f"{label} {mean:.2f}/5 ({_ci(conf)} {lower:.2f}-{upper:.2f})"
    if n < c.min_samples:
        verdict: Verdict = "pending"
        detail = f"{shown} over {n} ratings: too few, need {c.min_samples}"
    else:
        verdict = judge(lower, upper, c.threshold, c.bound)
        detail = f"{shown} {_relation(verdict, c.bound)} {c.threshold:g} over {n} ratings"
    return _result(c, op, value=mean, samples=n, verdict=verdict, detail=detail, lower=lower, upper=upper)


def _ratio(
    c: Criterion,
    op: Operation,
    v2: WindowStats,
    legacy: WindowStats,
    baseline: WindowStats | None,
    alpha: float,
) -> CriterionResult:
    latency = c.metric == "latency_ratio_vs_legacy"

    def size(w: WindowStats) -> int:  # the detector's latency check counts successful requests
        return w.latency.count if latency else w.requests

    source = "this window"
    if size(legacy) < c.min_samples and baseline is not None:
        legacy, source = baseline, "the rollout so far"
    detector = RegressionDetector(
        latency_ratio=c.threshold if latency else 1.2,
        error_ratio=1.5 if latency else c.threshold,
        min_samples=c.min_samples,
        alpha=alpha,
    )
    found = detector.evaluate(v2, legacy)
    kind, what = ("latency", "p95 latency") if latency else ("errors", "error rate")
    ratio = found.numbers["latency_ratio" if latency else "error_ratio"]
    p_value = found.numbers["latency_p_value" if latency else "error_p_value"]
    value = None if ratio is None else float(ratio)
    samples = min(size(v2), size(legacy))
    fired = [r for r in found.reasons if r.startswith(f"{kind}:")] if found.regression else []
    verdict: Verdict
    if fired:
        verdict, detail = "fail", f"{op} {fired[0]}; legacy from {source}"
    elif samples < c.min_samples:
        counted = "successful requests" if latency else "requests"
        verdict = "pending"
        detail = (
            f"{op} v2/legacy {what}: {size(v2)} v2 and {size(legacy)} legacy {counted} "
            f"({source}), need {c.min_samples} each"
        )
    else:
        within = value is None or value <= c.threshold
        verdict = "pass" if within else "pending"
        shown = "n/a" if value is None else f"{value:.2f}x"
        tail = "" if within else f", not significant yet (p={float(p_value or 1.0):.2g})"
        detail = f"{op} v2/legacy {what} {shown} (limit {c.threshold:g}x, legacy from {source}){tail}"
    return _result(c, op, value=value, samples=samples, verdict=verdict, detail=detail)
