"""RegressionDetector: is voice_v2 worse than legacy, enough to roll back?

The seed's PerformanceRegressionDetector compared point estimates: v2 average latency > legacy x 1.2
or v2 error rate > legacy x 1.5 meant rollback. At a 1 % rollout that fires on noise (three slow
requests move an average of thirty), and it cannot see a p95 at all. Here a check fires only when
all three hold:

1. enough data: both systems have at least ``min_samples`` requests (successful ones for latency);
2. the effect is as large as the seed's threshold (latency ratio > 1.2, error ratio > 1.5);
3. the effect is real: a one-sided test says v2 is worse. ``alpha`` is the false-alarm budget of
   the whole verdict, split evenly between the latency and the error check (Bonferroni), so a v2
   identical to legacy is called a regression with probability at most ``alpha``, not twice that.

Latency uses the p95 (the rollout criteria's metric) by default, tested by how often v2 exceeds the
pooled p95 (Fisher exact), or the mean, tested by Mann–Whitney. Errors use Fisher's exact test, which
stays honest with the handful of errors a small rollout produces. When legacy had no errors the
ratio divides by ``error_rate_floor`` instead (0.1 %, the production criterion), so it stays finite
and a single v2 error is not an "infinite" regression; significance still decides.

The verdict is ``regression`` when any check fires, ``healthy`` when every check ran and none
fired, and ``insufficient_data`` otherwise. Pure: the caller passes the windows in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from voxshift.core.stats import (
    LatencyHistogram,
    WindowStats,
    fisher_exact_greater,
    mann_whitney_greater,
    quantile_exceedance_test,
)

__all__ = ["RegressionDetector", "Verdict", "VerdictStatus", "WindowStats"]

VerdictStatus = Literal["regression", "healthy", "insufficient_data"]
LatencyMetric = Literal["p95", "mean"]
Number = float | int | None


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    reasons: tuple[str, ...]
    numbers: dict[str, Number] = field(default_factory=dict)

    @property
    def regression(self) -> bool:
        return self.status == "regression"

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "reasons": list(self.reasons), "numbers": dict(self.numbers)}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


class RegressionDetector:
    def __init__(
        self,
        latency_ratio: float = 1.2,
        error_ratio: float = 1.5,
        min_samples: int = 200,
        alpha: float = 0.01,
        metric: LatencyMetric = "p95",
        *,
        error_rate_floor: float = 0.001,
    ) -> None:
        if latency_ratio <= 1.0 or error_ratio <= 1.0:
            raise ValueError("latency_ratio and error_ratio must be > 1 (how much worse v2 may get)")
        if min_samples < 1:
            raise ValueError("min_samples must be >= 1")
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be within (0, 1)")
        if metric not in ("p95", "mean"):
            raise ValueError(f"metric must be 'p95' or 'mean', got {metric!r}")
        if not 0.0 < error_rate_floor < 1.0:
            raise ValueError("error_rate_floor must be within (0, 1)")
        self.latency_ratio = latency_ratio
        self.error_ratio = error_ratio
        self.min_samples = min_samples
        self.alpha = alpha
        self.check_alpha = alpha / 2  # two checks share the verdict's budget (see the module doc)
        self.metric: LatencyMetric = metric
        self.error_rate_floor = error_rate_floor

    def evaluate(self, v2: WindowStats, legacy: WindowStats) -> Verdict:
        numbers: dict[str, Number] = {
            "v2_requests": v2.requests,
            "legacy_requests": legacy.requests,
            "samples": min(v2.requests, legacy.requests),
        }
        fired: list[str] = []
        missing: list[str] = []
        self._latency(v2.latency, legacy.latency, numbers, fired, missing)
        self._errors(v2, legacy, numbers, fired, missing)
        if fired:
            return Verdict("regression", tuple(fired), numbers)
        if missing:
            return Verdict("insufficient_data", tuple(missing), numbers)
        return Verdict("healthy", (), numbers)

    def _latency(
        self,
        v2: LatencyHistogram,
        legacy: LatencyHistogram,
        numbers: dict[str, Number],
        fired: list[str],
        missing: list[str],
    ) -> None:
        numbers.update(
            v2_p95=v2.percentile(0.95),
            legacy_p95=legacy.percentile(0.95),
            v2_mean=v2.mean,
            legacy_mean=legacy.mean,
            latency_ratio=None,
            latency_p_value=None,
        )
        if min(v2.count, legacy.count) < self.min_samples:
            missing.append(
                f"latency: {v2.count} v2 and {legacy.count} legacy successful requests, "
                f"need {self.min_samples} each"
            )
            return
        if self.metric == "p95":
            ratio = _ratio(v2.percentile(0.95), legacy.percentile(0.95))
            _, _, p_value = quantile_exceedance_test(v2, legacy, 0.95)
        else:
            ratio = _ratio(v2.mean, legacy.mean)
            _, p_value = mann_whitney_greater(v2, legacy)
        numbers.update(latency_ratio=ratio, latency_p_value=p_value)
        v2_value = numbers[f"v2_{self.metric}"]
        legacy_value = numbers[f"legacy_{self.metric}"]
        if ratio is not None and ratio > self.latency_ratio and p_value < self.check_alpha:
            fired.append(
                f"latency: v2 {self.metric} {v2_value:.0f} ms is {ratio:.2f}x legacy {legacy_value:.0f} ms "
                f"(limit {self.latency_ratio}x), p={p_value:.2g} < {self.check_alpha:g}"
            )

    def _errors(
        self,
        v2: WindowStats,
        legacy: WindowStats,
        numbers: dict[str, Number],
        fired: list[str],
        missing: list[str],
    ) -> None:
        numbers.update(
            v2_error_rate=v2.error_rate,
            legacy_error_rate=legacy.error_rate,
            error_ratio=None,
            error_p_value=None,
        )
        if min(v2.requests, legacy.requests) < self.min_samples:
            missing.append(
                f"errors: {v2.requests} v2 and {legacy.requests} legacy requests, "
                f"need {self.min_samples} each"
            )
            return
        v2_rate = v2.errors / v2.requests
        legacy_rate = legacy.errors / legacy.requests
        ratio = v2_rate / max(legacy_rate, self.error_rate_floor)
        p_value = fisher_exact_greater(v2.errors, v2.requests, legacy.errors, legacy.requests)
        numbers.update(error_ratio=ratio, error_p_value=p_value)
        if ratio > self.error_ratio and p_value < self.check_alpha:
            fired.append(
                f"errors: v2 error rate {v2_rate:.2%} is {ratio:.2f}x legacy {legacy_rate:.2%} "
                f"(limit {self.error_ratio}x), p={p_value:.2g} < {self.check_alpha:g}"
            )
