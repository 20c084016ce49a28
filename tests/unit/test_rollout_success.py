"""The success report's verdicts (core.rollout.success): exact numbers from hand-built windows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from voxshift.core.flag_config import Features, PerOperation
from voxshift.core.flags import FlagConfig
from voxshift.core.rollout import success
from voxshift.core.rollout.success import Check
from voxshift.core.rollout.window import OperationWindow, RatingStats
from voxshift.core.stats import LatencyHistogram

ALL_ON = Features(True, True, True, True)
FULL = FlagConfig(enabled=True, features=ALL_ON, percentages=PerOperation(100, 100), version=7)


def window(
    v2: int,
    v2_errors: int,
    v2_ms: float,
    legacy: int,
    legacy_errors: int,
    legacy_ms: float,
    fallbacks: int = 0,
) -> OperationWindow:
    w = OperationWindow()
    for i in range(v2):
        w.v2.add(v2_ms, i >= v2_errors)
    for i in range(legacy):
        w.legacy.add(legacy_ms, i >= legacy_errors)
    w.fallbacks = fallbacks
    return w


def test_completion_needs_full_flags_every_feature_and_a_completed_rollout() -> None:
    row = success.completion(FULL, "completed")
    assert (row.value, row.verdict, row.samples) == (100.0, "pass", None)
    assert success.completion(FULL, "running").verdict == "fail"
    assert "the rollout is running, not completed" in success.completion(FULL, "running").why
    half = FULL.with_percentage("tts", 50)
    assert (success.completion(half, "completed").value, success.completion(half, "completed").verdict) == (
        50.0,
        "fail",
    )
    killed = success.completion(replace(FULL, enabled=False), "completed")
    assert killed.value == 0.0 and "kill switch" in killed.why
    no_cache = success.completion(FULL.with_feature("caching_enabled", False), "completed")
    assert no_cache.verdict == "fail" and "caching_enabled" in no_cache.why


def test_latency_regression_is_the_worst_operations_p95_ratio() -> None:
    stt = window(250, 0, 500.0, 250, 0, 400.0)
    tts = window(250, 0, 300.0, 250, 0, 300.0)
    row = success.latency_regression({"stt": stt, "tts": tts})
    expected = (stt.v2.latency.percentile(0.95) / stt.legacy.latency.percentile(0.95) - 1) * 100  # type: ignore[operator]
    assert row.value == pytest.approx(expected) and expected > 5
    assert (row.verdict, row.samples) == ("fail", 1000)
    same = success.latency_regression({"tts": tts})
    assert (same.value, same.verdict) == (0.0, "pass")


def test_too_few_samples_is_not_measurable_and_says_how_many() -> None:
    row = success.latency_regression({"stt": window(150, 0, 500.0, 900, 0, 400.0)})
    assert row.verdict == "not_measurable" and "stt: 150 v2 / 900 legacy" in row.why
    assert row.value is None and row.samples == 1050
    empty = success.error_rate_increase({"stt": OperationWindow()})
    assert (empty.verdict, empty.why) == ("not_measurable", "no voice traffic in the window")


def test_error_rate_increase_in_percentage_points() -> None:
    row = success.error_rate_increase({"stt": window(400, 6, 100.0, 400, 2, 100.0)})
    assert row.value == pytest.approx((6 / 400 - 2 / 400) * 100)  # 1.0 pp
    assert row.verdict == "pass"
    worse = success.error_rate_increase({"stt": window(400, 7, 100.0, 400, 2, 100.0)})
    assert worse.value == pytest.approx(1.25) and worse.verdict == "fail"


def test_rollback_events_counts_rollbacks_and_halts() -> None:
    assert success.rollback_events([]).verdict == "not_measurable"
    row = success.rollback_events(["start", "rollback", "resume", "rollback", "resume", "promote"])
    assert (row.value, row.samples, row.verdict) == (2.0, 6, "pass")
    halted = success.rollback_events(["start", "rollback", "resume", "rollback", "resume", "halt"])
    assert (halted.value, halted.verdict) == (3.0, "fail") and "1 halting" in halted.why


def test_satisfaction_needs_30_ratings_and_a_mean_of_4_5() -> None:
    few = RatingStats(29, 29 * 5, 29 * 25)
    assert success.user_satisfaction(few).verdict == "not_measurable"
    ok = RatingStats(30, 20 * 5 + 10 * 4, 20 * 25 + 10 * 16)
    row = success.user_satisfaction(ok, (4.4, 4.8))
    assert row.value == pytest.approx(140 / 30) and row.verdict == "pass" and "95% CI 4.40..4.80" in row.why
    low = RatingStats(30, 30 * 4, 30 * 16)
    assert success.user_satisfaction(low).verdict == "fail"


def test_adoption_counts_a_fallback_once() -> None:
    # 300 v2 attempts, 3 failed and fell back; legacy served those 3 and 100 others.
    row = success.feature_adoption({"stt": window(300, 3, 100.0, 103, 0, 100.0, fallbacks=3)})
    assert row.samples == 400 and row.value == pytest.approx(297 / 400 * 100)
    assert row.verdict == "fail"
    assert success.feature_adoption({"stt": window(300, 0, 100.0, 0, 0, 0.0)}).value == 100.0


def test_unmeasurable_rows_and_summary() -> None:
    rows = [success.data_loss(), success.support_tickets(), success.revenue_impact()]
    assert all(r.verdict == "not_measurable" and r.why for r in rows)
    assert "sunset" in rows[0].why
    rows.append(success.completion(FULL, "completed"))
    assert success.summarize(rows) == {"pass": 1, "fail": 0, "not_measurable": 3}


def test_drills_and_stage_verdicts() -> None:
    on = FlagConfig(enabled=True, features=ALL_ON, percentages=PerOperation(20, 10))
    assert success.is_drill(None, on) is None
    assert success.is_drill(on, replace(on, enabled=False)) == "kill switch"
    assert success.is_drill(on, on.with_percentage("stt", 5)) == "lowered stt 20->5%"
    assert success.is_drill(on, on.with_feature("tts", False)) == "turned off tts"
    assert success.is_drill(on, on.with_percentage("stt", 30)) is None
    assert success.stage_ok([Check("a", "pass", ""), Check("b", "warn", ""), Check("c", "skip", "")])
    assert not success.stage_ok([Check("a", "pass", ""), Check("b", "fail", "")])
    assert success.fresh(100.0, 220.0, 60.0) and not success.fresh(100.0, 221.0, 60.0)
    assert not success.fresh(None, 0.0, 60.0)
    hist = LatencyHistogram()
    assert hist.percentile(0.95) is None
