"""The seed's "Migration Success Criteria" as verdicts, and the readiness checks' shape.

Pure: every function takes numbers already read (flag values, window counters, histograms, rating
sums, history counts) and returns a :class:`MetricRow` - metric, target, value, sample size and a
verdict ``pass`` / ``fail`` / ``not_measurable`` with a ``why``. The service
(``services.rollout.report``) reads the stores; this module decides, so every verdict can be
checked exactly in a unit test.

Choices (the seed gives a target and a sentence, not a formula):

* **Performance regression**: v2's p95 latency against legacy's, per operation, over the same
  window, as ``(v2 / legacy - 1) * 100`` %; the worst operation is the row's value. The histograms
  have 10 %-wide buckets and a p95 is its bucket's upper bound, so the ratio moves in steps of 10 %:
  "<= 5 %" holds exactly when v2's p95 is in legacy's bucket or a lower one.
* **Error rate increase**: v2's error rate minus legacy's, in **percentage points**, per operation
  (worst wins). "Not more than 1 % higher" read as a relative 1 % would fail on a single error at
  a 0.1 % base rate, which no window can measure; points are what an operator reads on a dashboard.
  A v2 attempt that fell back to legacy counts as a v2 error, as in the rollout criteria.
* **Feature adoption**: there is no per-user usage count, so "users using voice features" is read
  as the share of voice requests that voice_v2 answered over the window.
* Too few samples is ``not_measurable``, never ``pass`` (the rollout criteria's rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from voxshift.core.flags import FlagConfig
from voxshift.core.rollout.window import OperationWindow, RatingStats
from voxshift.core.vocabulary import FEATURES, OPERATIONS

Verdict = Literal["pass", "fail", "not_measurable"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
CheckStatus = Literal["pass", "fail", "warn", "skip"]

# The seed's targets.
COMPLETION_TARGET = 100.0  # % of users on voice_v2
MAX_LATENCY_REGRESSION_PCT = 5.0
MAX_ERROR_INCREASE_PP = 1.0
MAX_ROLLBACKS = 2
MIN_SATISFACTION = 4.5
MIN_ADOPTION_PCT = 90.0
# Below these a figure is noise: the default plan's floors (200 requests per side for a rate or a
# p95 comparison, 30 ratings for a mean; see core/rollout/plan_toml.py for why).
MIN_REQUESTS = 200
MIN_RATINGS = 30
SUNSET_ISSUE = "the legacy sunset issue (seed weeks 5-6)"


@dataclass(frozen=True)
class MetricRow:
    metric: str
    target: str
    value: float | None
    unit: str
    samples: int | None  # None: the figure is configuration, not a sample
    verdict: Verdict
    why: str

    def to_dict(self) -> dict[str, Any]:
        value = None if self.value is None else round(self.value, 4)
        return {
            "metric": self.metric,
            "target": self.target,
            "value": value,
            "unit": self.unit,
            "samples": self.samples,
            "verdict": self.verdict,
            "why": self.why,
        }


@dataclass(frozen=True)
class Check:
    """One readiness check: ``warn`` and ``skip`` never fail a stage."""

    name: str
    status: CheckStatus
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "evidence": self.evidence}


def stage_ok(checks: Iterable[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def summarize(rows: Iterable[MetricRow]) -> dict[str, int]:
    out: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for row in rows:
        out[row.verdict] += 1
    return out


def _not_measurable(metric: str, target: str, unit: str, why: str, samples: int | None = None) -> MetricRow:
    return MetricRow(metric, target, None, unit, samples, "not_measurable", why)


# --- technical -----------------------------------------------------------------------------------


def effective_percentages(config: FlagConfig) -> dict[str, int]:
    """What each operation really sends to v2: 0 behind the kill switch or with its feature off."""
    return {op: config.percentages[op] if config.enabled and config.feature(op) else 0 for op in OPERATIONS}


def completion(config: FlagConfig, rollout_state: str) -> MetricRow:
    """All users on voice_v2: the live flags at 100 % for both operations with every seed feature on,
    and the rollout completed (flags set to 100 % by hand are a migration not yet judged done)."""
    effective = effective_percentages(config)
    value = float(min(effective.values()))
    off = [f for f in FEATURES if not config.feature(f)]
    shown = f"STT {effective['stt']}%, TTS {effective['tts']}%"
    problems: list[str] = []
    if not config.enabled:
        problems.append("the kill switch is off")
    if off:
        problems.append("features off: " + ", ".join(off))
    if rollout_state != "completed":
        problems.append(f"the rollout is {rollout_state}, not completed")
    verdict: Verdict = "pass" if value >= COMPLETION_TARGET and not problems else "fail"
    why = f"flags send {shown} to voice_v2" + (f"; {'; '.join(problems)}" if problems else "")
    return MetricRow("Migration Completion", "100%", value, "%", None, verdict, why)


def data_loss() -> MetricRow:
    return _not_measurable(
        "Data Loss",
        "0%",
        "%",
        f"no data has been migrated: {SUNSET_ISSUE} is not built yet, and it is what moves "
        "the legacy's settings and content; until then there is nothing to compare",
    )


def _per_operation(
    windows: Mapping[str, OperationWindow], metric: str, target: str, unit: str, figure: _Figure
) -> MetricRow:
    """The worst operation's figure; operations without enough samples on both sides are named."""
    measured: dict[str, float] = {}
    short: list[str] = []
    samples = 0
    for op in OPERATIONS:
        w = windows.get(op)
        if w is None:
            continue
        n_v2, n_legacy = figure.sizes(w)
        samples += n_v2 + n_legacy
        if not n_v2 and not n_legacy:
            continue
        if n_v2 < MIN_REQUESTS or n_legacy < MIN_REQUESTS:
            short.append(f"{op}: {n_v2} v2 / {n_legacy} legacy")
            continue
        measured[op] = figure.value(w)
    need = f"need {MIN_REQUESTS} {figure.what} on each side"
    if not measured:
        why = (
            "no voice traffic in the window" if not short else f"too few samples ({'; '.join(short)}); {need}"
        )
        return _not_measurable(metric, target, unit, why, samples)
    worst = max(measured, key=lambda op: measured[op])
    value = measured[worst]
    parts = [f"{op} {figure.describe(windows[op])}" for op in measured]
    if short:
        parts.append(f"not judged, too few samples: {'; '.join(short)} ({need})")
    verdict: Verdict = "pass" if value <= figure.limit else "fail"
    return MetricRow(metric, target, value, unit, samples, verdict, "; ".join(parts))


class _Figure:
    what = "requests"
    limit = 0.0

    def sizes(self, w: OperationWindow) -> tuple[int, int]:
        raise NotImplementedError

    def value(self, w: OperationWindow) -> float:
        raise NotImplementedError

    def describe(self, w: OperationWindow) -> str:
        raise NotImplementedError


class _LatencyRegression(_Figure):
    what = "successful requests"
    limit = MAX_LATENCY_REGRESSION_PCT

    def sizes(self, w: OperationWindow) -> tuple[int, int]:
        return w.v2.latency.total, w.legacy.latency.total

    def value(self, w: OperationWindow) -> float:
        v2, legacy = w.v2.latency.percentile(0.95), w.legacy.latency.percentile(0.95)
        assert v2 is not None and legacy is not None  # sizes() said both have samples
        return (v2 / legacy - 1.0) * 100.0

    def describe(self, w: OperationWindow) -> str:
        v2, legacy = w.v2.latency.percentile(0.95), w.legacy.latency.percentile(0.95)
        return f"p95 v2 {v2:.0f} ms vs legacy {legacy:.0f} ms ({self.value(w):+.1f}%)"


class _ErrorIncrease(_Figure):
    limit = MAX_ERROR_INCREASE_PP

    def sizes(self, w: OperationWindow) -> tuple[int, int]:
        return w.v2.requests, w.legacy.requests

    def value(self, w: OperationWindow) -> float:
        return (w.v2.errors / w.v2.requests - w.legacy.errors / w.legacy.requests) * 100.0

    def describe(self, w: OperationWindow) -> str:
        return (
            f"v2 {w.v2.errors}/{w.v2.requests} vs legacy {w.legacy.errors}/{w.legacy.requests} "
            f"({self.value(w):+.2f} pp)"
        )


def latency_regression(windows: Mapping[str, OperationWindow]) -> MetricRow:
    return _per_operation(
        windows, "Performance Regression", "<=5% (p95 vs legacy)", "%", _LatencyRegression()
    )


def error_rate_increase(windows: Mapping[str, OperationWindow]) -> MetricRow:
    return _per_operation(windows, "Error Rate Increase", "<=1 pp (v2 - legacy)", "pp", _ErrorIncrease())


ROLLBACK_KINDS = ("rollback", "halt")


def rollback_events(kinds: Sequence[str]) -> MetricRow:
    """``kinds``: the ``kind`` of every transition in the rollout history (whole migration)."""
    if not kinds:
        return _not_measurable(
            "Rollback Events", "<=2", "events", "no rollout transition recorded yet: nothing to count", 0
        )
    count = sum(1 for k in kinds if k in ROLLBACK_KINDS)
    halts = sum(1 for k in kinds if k == "halt")
    verdict: Verdict = "pass" if count <= MAX_ROLLBACKS else "fail"
    why = f"{count} rollback transitions ({halts} halting) among {len(kinds)} in the rollout history"
    return MetricRow("Rollback Events", "<=2", float(count), "events", len(kinds), verdict, why)


# --- business ------------------------------------------------------------------------------------


def user_satisfaction(
    v2: RatingStats, interval: tuple[float | None, float | None] = (None, None)
) -> MetricRow:
    """Mean rating of the responses voice_v2 served; ``interval`` (the 95 % CI) is only reported."""
    metric, target = "User Satisfaction", ">=4.5/5"
    if v2.count < MIN_RATINGS or v2.mean is None:
        why = f"{v2.count} ratings of voice_v2 responses in the window; need {MIN_RATINGS}"
        return _not_measurable(metric, target, "/5", why, v2.count)
    low, high = interval
    ci = f", 95% CI {low:.2f}..{high:.2f}" if low is not None and high is not None else ""
    verdict: Verdict = "pass" if v2.mean >= MIN_SATISFACTION else "fail"
    why = f"mean of {v2.count} ratings of voice_v2 responses {v2.mean:.2f}{ci}"
    return MetricRow(metric, target, v2.mean, "/5", v2.count, verdict, why)


def feature_adoption(windows: Mapping[str, OperationWindow]) -> MetricRow:
    """Share of voice requests answered by voice_v2: v2 successes over every distinct request (a
    fallback is counted on both systems, so once subtracted)."""
    metric, target = "Feature Adoption", ">=90%"
    served = sum(w.v2.successes for w in windows.values())
    total = sum(w.v2.requests + w.legacy.requests - w.fallbacks for w in windows.values())
    if total < MIN_REQUESTS:
        why = f"{total} voice requests in the window; need {MIN_REQUESTS}"
        return _not_measurable(metric, target, "%", why, total)
    value = served / total * 100.0
    verdict: Verdict = "pass" if value >= MIN_ADOPTION_PCT else "fail"
    why = f"voice_v2 answered {served} of {total} voice requests (read as: users using voice_v2's features)"
    return MetricRow(metric, target, value, "%", total, verdict, why)


def support_tickets() -> MetricRow:
    return _not_measurable(
        "Support Tickets",
        "<=10% increase",
        "%",
        "no support-ticket source is connected to voxshift; compare voice-related tickets in the "
        "help desk before and after the migration",
    )


def revenue_impact() -> MetricRow:
    return _not_measurable(
        "Revenue Impact",
        "0%",
        "%",
        "no revenue data reaches voxshift; it has to come from the billing side",
    )


# --- readiness helpers ---------------------------------------------------------------------------


def is_drill(old: FlagConfig | None, new: FlagConfig) -> str | None:
    """What makes a flag change a rollback drill (the kill switch thrown, a percentage lowered, an
    operation's feature turned off), or None. The first stored config (``old`` None) is none."""
    if old is None:
        return None
    if old.enabled and not new.enabled:
        return "kill switch"
    lowered = [
        f"{op} {old.percentages[op]}->{new.percentages[op]}%"
        for op in OPERATIONS
        if new.percentages[op] < old.percentages[op]
    ]
    if lowered:
        return "lowered " + ", ".join(lowered)
    off = [op for op in OPERATIONS if old.feature(op) and not new.feature(op)]
    return "turned off " + ", ".join(off) if off else None


def fresh(evaluated_at: float | None, now: float, interval_s: float) -> bool:
    """An evaluation counts as recent within two intervals (one may be running late)."""
    return evaluated_at is not None and now - evaluated_at <= 2 * interval_s
