"""core.rollout.criteria: the interval statistics against known values, and the pass / fail /
pending regions of every metric with exact counts (never pass below min_samples), the baseline for
the ratio criteria, dry runs and overall()."""

from __future__ import annotations

import json
import math

import pytest

from voxshift.core.rollout.criteria import (
    CriterionResult,
    evaluate,
    evaluate_all,
    mean_interval,
    overall,
    t_quantile,
    wilson_interval,
    z_quantile,
)
from voxshift.core.rollout.plan import Criterion, Metric, Step, default_plan
from voxshift.core.rollout.window import FeedbackWindow, OperationWindow, RatingStats, TrafficWindow
from voxshift.core.stats import BOUNDS_MS, WindowStats, bucket_index, upper_bound_ms
from voxshift.errors import InvalidRequest

STT_ONLY = Step(1, 0, 60.0)
BOTH = Step(10, 10, 60.0)
STT_FULL = Step(100, 0, 60.0)  # legacy gets no new STT traffic
NO_FEEDBACK = FeedbackWindow(0.0, 60.0)


def stats(
    ok: int = 0, errors: int = 0, ms: float = 500.0, slow: int = 0, slow_ms: float = 5000.0
) -> WindowStats:
    w = WindowStats()
    for _ in range(ok):
        w.add(ms, True)
    for _ in range(slow):
        w.add(slow_ms, True)
    for _ in range(errors):
        w.add(50.0, False, "engine_error")
    return w


def spread(factor: float = 1.0, n: int = 300) -> WindowStats:
    """``n`` successes log-spaced from 300 ms (to 6 s for 300), times ``factor``: a tail wide enough
    for the pooled-p95 exceedance test, which a point mass or a narrow band would not give it."""
    w = WindowStats()
    for i in range(n):
        w.add(300.0 * math.exp(i / 100.0) * factor, True)
    return w


def traffic(stt: OperationWindow | None = None, tts: OperationWindow | None = None) -> TrafficWindow:
    return TrafficWindow(0.0, 60.0, {"stt": stt or OperationWindow(), "tts": tts or OperationWindow()})


def v2_only(v2: WindowStats, **counts: int) -> TrafficWindow:
    return traffic(OperationWindow(v2=v2, **counts))


def ratings(*values: int) -> RatingStats:
    return RatingStats(len(values), float(sum(values)), float(sum(v * v for v in values)))


def one(criterion: Criterion, window: TrafficWindow, step: Step = STT_ONLY, **kw: object) -> CriterionResult:
    results = evaluate(criterion, step, window, NO_FEEDBACK, **kw)  # type: ignore[arg-type]
    assert len(results) == 1
    return results[0]


# --- statistics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "trials", "lower", "upper"),
    [
        (0, 200, 0.0, 0.0188453),  # the textbook 0/200: under 1.9 %
        (10, 100, 0.0552291, 0.1743657),
        (10, 200, 0.0273826, 0.0895781),
        (180, 200, 0.8505942, 0.9343296),
        (200, 200, 1 - 0.0188453, 1.0),
        (0, 0, 0.0, 1.0),  # no data: no knowledge
    ],
)
def test_wilson_interval(events: int, trials: int, lower: float, upper: float) -> None:
    lo, hi = wilson_interval(events, trials)
    assert lo == pytest.approx(lower, abs=1e-7)
    assert hi == pytest.approx(upper, abs=1e-7)


def test_wilson_zero_events_boundary() -> None:
    # With no errors the upper bound is z^2 / (n + z^2): it drops under 2 % between 188 and 189.
    z2 = z_quantile(0.95) ** 2
    assert wilson_interval(0, 189)[1] == pytest.approx(z2 / (189 + z2))
    assert wilson_interval(0, 188)[1] > 0.02 > wilson_interval(0, 189)[1]
    assert wilson_interval(0, 200, confidence=0.99)[1] == pytest.approx(0.0321, abs=1e-4)


def test_z_quantile() -> None:
    assert z_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_quantile(0.99) == pytest.approx(2.575829, abs=1e-6)
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(InvalidRequest) as exc:
            z_quantile(bad)
        assert exc.value.param == "confidence"


@pytest.mark.parametrize(
    ("df", "table"),
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (5, 2.5706), (10, 2.2281), (29, 2.0452), (100, 1.9840)],
)
def test_t_quantile_against_the_table(df: int, table: float) -> None:
    assert t_quantile(0.95, df) == pytest.approx(table, rel=2e-3)


def test_mean_interval() -> None:
    # 15 fours and 15 fives: mean 4.5, s = 0.50855, t(29) = 2.0452 -> 4.5 -/+ 0.18990.
    lo_hi = mean_interval(ratings(*[4, 5] * 15))
    assert lo_hi is not None
    assert lo_hi[0] == pytest.approx(4.31011, abs=1e-4)
    assert lo_hi[1] == pytest.approx(4.68989, abs=1e-4)
    assert mean_interval(ratings(5)) is None  # one rating has no spread
    assert mean_interval(ratings()) is None
    assert mean_interval(ratings(1, 5)) == (1.0, 5.0)  # clipped to the scale


# --- rates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "requests", "min_samples", "verdict"),
    [
        (0, 200, 200, "pass"),  # upper 1.88 % < 2 %
        (0, 188, 100, "pending"),  # upper 2.002 %: not yet clear of 2 %
        (0, 189, 100, "pass"),
        (0, 150, 200, "pending"),  # too few, however clean
        (4, 200, 200, "pending"),  # 2 %, CI 0.78 %-5.03 % straddles
        (10, 200, 200, "fail"),  # 5 %, lower bound 2.74 % > 2 %
        (100, 150, 200, "pending"),  # 67 % errors, but too few to act on
    ],
)
def test_error_rate_regions(errors: int, requests: int, min_samples: int, verdict: str) -> None:
    r = one(Criterion("error_rate", 0.02, "max", min_samples), v2_only(stats(requests - errors, errors)))
    assert (r.verdict, r.samples, r.min_samples, r.operation) == (verdict, requests, min_samples, "stt")
    assert r.value == errors / requests
    assert (r.lower, r.upper) == wilson_interval(errors, requests)


def test_error_rate_detail() -> None:
    passed = one(Criterion("error_rate", 0.02, "max"), v2_only(stats(200)))
    assert passed.detail == "stt error rate 0% (95% CI 0%-1.88%) < 2% over 200 v2 requests"
    failed = one(Criterion("error_rate", 0.02, "max"), v2_only(stats(190, 10)))
    assert failed.detail == "stt error rate 5% (95% CI 2.74%-8.96%) > 2% over 200 v2 requests"
    few = one(Criterion("error_rate", 0.02, "max"), v2_only(stats(50)))
    assert few.detail == "stt error rate 0% (95% CI 0%-7.13%) over 50 v2 requests: too few, need 200"
    empty = one(Criterion("error_rate", 0.02, "max"), v2_only(stats()))
    assert (empty.verdict, empty.value, empty.lower, empty.detail) == (
        "pending",
        None,
        None,
        "stt error rate: no v2 requests yet, need 200",
    )


def test_a_fallback_is_a_v2_error() -> None:
    # 10 v2 attempts failed and legacy answered them: users were served, v2 still erred.
    window = traffic(OperationWindow(v2=stats(190, 10), legacy=stats(10), fallbacks=10))
    errors = one(Criterion("error_rate", 0.02, "max"), window)
    assert (errors.value, errors.verdict) == (0.05, "fail")
    fallbacks = one(Criterion("fallback_rate", 0.02, "max"), window)
    assert (fallbacks.value, fallbacks.samples, fallbacks.verdict) == (0.05, 200, "fail")
    clean = one(Criterion("fallback_rate", 0.02, "max"), v2_only(stats(200)))
    assert clean.verdict == "pass"


@pytest.mark.parametrize(
    ("hits", "lookups", "verdict"),
    [(180, 200, "pass"), (150, 200, "pending"), (140, 200, "fail"), (100, 100, "pending")],
)
def test_cache_hit_rate_regions(hits: int, lookups: int, verdict: str) -> None:
    # 180/200: lower 85.1 % > 80 %; 150/200: 68.6 %-80.5 %; 140/200: upper 75.9 % < 80 %.
    window = v2_only(stats(lookups), cache_hits=hits, cache_lookups=lookups)
    r = one(Criterion("cache_hit_rate", 0.8, "min"), window)
    assert (r.verdict, r.value, r.samples) == (verdict, hits / lookups, lookups)


def test_operations_judged() -> None:
    window = traffic(OperationWindow(v2=stats(200)), OperationWindow(v2=stats(190, 10)))
    plain = Criterion("error_rate", 0.02, "max")
    assert [r.operation for r in evaluate(plain, STT_ONLY, window, NO_FEEDBACK)] == ["stt"]
    both = evaluate(plain, BOTH, window, NO_FEEDBACK)
    assert [(r.operation, r.verdict) for r in both] == [("stt", "pass"), ("tts", "fail")]
    tts_only = Criterion("error_rate", 0.02, "max", operations=("tts",))
    assert evaluate(tts_only, STT_ONLY, window, NO_FEEDBACK) == []  # the step sends no TTS to v2
    assert [r.operation for r in evaluate(tts_only, BOTH, window, NO_FEEDBACK)] == ["tts"]


# --- p95 -----------------------------------------------------------------------------------------


def test_p95_pass_fail_pending() -> None:
    limit = Criterion("latency_p95_ms", 2000, "max")
    fast = one(limit, v2_only(stats(200, errors=100)))  # failures have no latency: not samples
    assert (fast.verdict, fast.samples, fast.value) == ("pass", 200, upper_bound_ms(bucket_index(500.0)))
    assert (fast.lower, fast.upper) == wilson_interval(0, 200)
    slow = one(limit, v2_only(stats(170, slow=30)))  # 15 % over 2 s
    assert (slow.verdict, slow.value) == ("fail", upper_bound_ms(bucket_index(5000.0)))
    assert slow.lower == pytest.approx(wilson_interval(30, 200)[0])
    unsure = one(limit, v2_only(stats(188, slow=12)))  # 6 %: CI 3.5 %-10.2 % includes 5 %
    assert unsure.verdict == "pending"
    few = one(limit, v2_only(stats(100)))
    assert (few.verdict, few.samples) == ("pending", 100)
    assert "too few, need 200" in few.detail
    assert "exact to a histogram bucket" in fast.detail


def test_p95_the_limits_own_bucket_is_undecided() -> None:
    near = v2_only(stats(200, ms=1990.0))  # same bucket as 2000 ms (1862-2048 ms)
    r = one(Criterion("latency_p95_ms", 2000, "max"), near)
    assert (r.verdict, r.lower, r.upper) == ("pending", 0.0, 1.0)
    # A limit on the bucket's upper bound is exact: everything in the bucket is under it.
    exact = one(Criterion("latency_p95_ms", BOUNDS_MS[bucket_index(1990.0)], "max"), near)
    assert exact.verdict == "pass"
    # A limit under the bucket's lower bound: every request is surely over it.
    under = one(Criterion("latency_p95_ms", 1800, "max"), near)
    assert (under.verdict, under.lower) == ("fail", wilson_interval(200, 200)[0])


# --- feedback ------------------------------------------------------------------------------------


def feedback(**by_key: RatingStats) -> FeedbackWindow:
    keys = {"v2_stt": ("voice_v2", "stt"), "legacy_stt": ("legacy", "stt"), "v2_tts": ("voice_v2", "tts")}
    return FeedbackWindow(0.0, 60.0, {keys[k]: v for k, v in by_key.items()})


def rated(criterion: Criterion, window: FeedbackWindow) -> CriterionResult:
    results = evaluate(criterion, STT_ONLY, traffic(), window)
    assert len(results) == 1
    return results[0]


def test_user_feedback_reads_v2_ratings_only() -> None:
    window = feedback(v2_stt=ratings(*[4, 5] * 15), legacy_stt=ratings(*[1] * 30), v2_tts=ratings(*[1] * 30))
    r = rated(Criterion("user_feedback", 4.0, "min", 30), window)
    assert (r.verdict, r.value, r.samples) == ("pass", 4.5, 30)
    assert r.lower == pytest.approx(4.31011, abs=1e-4)
    assert r.detail == "stt v2 feedback 4.50/5 (95% CI 4.31-4.69) > 4 over 30 ratings"
    # user_satisfaction pools every system's ratings of the operation: 2.75 here.
    s = rated(Criterion("user_satisfaction", 4.0, "min", 30), window)
    assert (s.verdict, s.value, s.samples) == ("fail", 2.75, 60)


@pytest.mark.parametrize(
    ("values", "min_samples", "verdict"),
    [
        ([4, 5] * 15, 30, "pass"),
        ([4, 5] * 14 + [4], 30, "pending"),  # 29 ratings
        ([3, 5] * 15, 30, "pending"),  # mean 4.0 exactly
        ([3, 4] * 15, 30, "fail"),  # 3.5, CI 3.31-3.69
        ([5] * 30, 30, "pass"),  # no spread: the mean itself
        ([5], 1, "pending"),  # one rating has no spread to judge
    ],
)
def test_feedback_regions(values: list[int], min_samples: int, verdict: str) -> None:
    r = rated(Criterion("user_feedback", 4.0, "min", min_samples), feedback(v2_stt=ratings(*values)))
    assert (r.verdict, r.samples) == (verdict, len(values))


# --- ratios against legacy -----------------------------------------------------------------------


def test_latency_ratio() -> None:
    rule = Criterion("latency_ratio_vs_legacy", 1.2, "max")
    slower = one(rule, traffic(OperationWindow(v2=spread(2.0), legacy=spread())))
    assert slower.verdict == "fail"
    v2_p95, legacy_p95 = spread(2.0).latency.percentile(0.95), spread().latency.percentile(0.95)
    assert v2_p95 is not None and legacy_p95 is not None
    assert slower.value == pytest.approx(v2_p95 / legacy_p95)
    assert slower.detail.startswith("stt latency: v2 p95")
    assert slower.detail.endswith("legacy from this window")
    same = one(rule, traffic(OperationWindow(v2=spread(), legacy=spread())))
    assert (same.verdict, same.value, same.samples) == ("pass", 1.0, 300)
    few = one(rule, traffic(OperationWindow(v2=spread(2.0, 100), legacy=spread(1.0, 100))))
    assert (few.verdict, few.samples) == ("pending", 100)


def test_ratio_uses_the_baseline_when_legacy_is_idle() -> None:
    rule = Criterion("latency_ratio_vs_legacy", 1.2, "max")
    at_100 = traffic(OperationWindow(v2=spread(2.0)))  # legacy got nothing this step
    baseline = traffic(OperationWindow(legacy=spread()))
    assert one(rule, at_100, STT_FULL).verdict == "pending"
    r = one(rule, at_100, STT_FULL, baseline=baseline)
    assert r.verdict == "fail"
    assert r.detail.endswith("legacy from the rollout so far")
    # Enough legacy in the window itself: the window wins over the baseline.
    busy = traffic(OperationWindow(v2=spread(2.0), legacy=spread(2.0)))
    assert one(rule, busy, STT_FULL, baseline=baseline).verdict == "pass"


def test_error_ratio() -> None:
    rule = Criterion("error_ratio_vs_legacy", 1.5, "max")
    worse = one(rule, traffic(OperationWindow(v2=stats(270, 30), legacy=stats(297, 3))))
    assert (worse.verdict, worse.value) == ("fail", pytest.approx(10.0))
    assert worse.detail.startswith("stt errors: v2 error rate 10.00% is 10.00x legacy 1.00%")
    clean = one(rule, traffic(OperationWindow(v2=stats(300), legacy=stats(300))))
    assert (clean.verdict, clean.value) == ("pass", 0.0)
    # 2 errors in 300 against none: 6.7x legacy's floor, but not significant (p = 0.25): not a pass.
    unsure = one(rule, traffic(OperationWindow(v2=stats(298, 2), legacy=stats(300))))
    assert (unsure.verdict, unsure.value) == ("pending", pytest.approx((2 / 300) / 0.001))
    assert "not significant yet" in unsure.detail


# --- dry runs, overall, the whole phase ----------------------------------------------------------


def result(verdict: str, dry_run: bool = False) -> CriterionResult:
    return CriterionResult("error_rate", "stt", 0.0, 0.02, "max", 200, 200, verdict, dry_run, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "pending"], "pending"),
        (["pending", "fail"], "fail"),
        (["pass", "fail"], "fail"),
    ],
)
def test_overall(verdicts: list[str], expected: str) -> None:
    assert overall([result(v) for v in verdicts]) == expected


def test_dry_run_is_reported_never_counted() -> None:
    dry = one(Criterion("error_rate", 0.02, "max", dry_run=True), v2_only(stats(190, 10)))
    assert (dry.verdict, dry.dry_run) == ("fail", True)
    assert overall([dry]) == "pass"
    assert overall([dry, result("pass")]) == "pass"
    assert overall([dry, result("pending")]) == "pending"
    assert overall([result("pending", dry_run=True), result("pass")]) == "pass"


def test_to_dict() -> None:
    r = one(Criterion("error_rate", 0.02, "max"), v2_only(stats(200)))
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc == {
        "metric": "error_rate",
        "operation": "stt",
        "value": 0.0,
        "threshold": 0.02,
        "bound": "max",
        "samples": 200,
        "min_samples": 200,
        "verdict": "pass",
        "dry_run": False,
        "detail": "stt error rate 0% (95% CI 0%-1.88%) < 2% over 200 v2 requests",
        "lower": 0.0,
        "upper": pytest.approx(0.0188453, abs=1e-7),
    }


def test_evaluate_all_on_the_default_canary() -> None:
    canary = default_plan().phases[0]
    healthy = traffic(OperationWindow(v2=stats(300), legacy=stats(3000)))
    window = FeedbackWindow(0.0, 60.0, {("voice_v2", "stt"): ratings(*[4, 5] * 20)})
    results = evaluate_all(canary, canary.steps[0], healthy, window)
    expected: list[Metric] = [
        "error_rate",
        "latency_p95_ms",
        "user_feedback",
        "latency_ratio_vs_legacy",
        "error_ratio_vs_legacy",
    ]
    assert [(r.metric, r.operation) for r in results] == [(m, "stt") for m in expected]
    assert [r.verdict for r in results] == ["pass"] * 5
    assert overall(results) == "pass"
    # No ratings yet: the feedback criterion holds the phase at pending.
    assert overall(evaluate_all(canary, canary.steps[0], healthy, NO_FEEDBACK)) == "pending"


def test_evaluate_all_at_full_rollout_judges_both_operations() -> None:
    production = default_plan().phases[3]
    results = evaluate_all(production, production.steps[-1], traffic(), NO_FEEDBACK)
    assert len(results) == 2 * len(production.criteria)
    assert {r.verdict for r in results} == {"pending"}  # nothing measured: nothing decided
    assert all(math.isfinite(r.threshold) for r in results)


def test_bad_confidence() -> None:
    with pytest.raises(InvalidRequest):
        evaluate(Criterion("error_rate", 0.02, "max"), STT_ONLY, traffic(), NO_FEEDBACK, confidence=1.0)
