"""A rollout plan: phases of steps, each with its percentages, features, minimum duration and
criteria. A plan is data (TOML, see ``docs/rollout.md``); the seed's schedule (M3.1) is the
built-in default. Frozen dataclasses, checked on construction, so an invalid plan never exists.

No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from voxshift.core.vocabulary import FeatureName, Operation

Metric = Literal[
    "error_rate",
    "latency_p95_ms",
    "user_feedback",
    "user_satisfaction",
    "cache_hit_rate",
    "fallback_rate",
    "latency_ratio_vs_legacy",
    "error_ratio_vs_legacy",
]
METRICS: tuple[Metric, ...] = get_args(Metric)
Bound = Literal["max", "min"]  # max: the value must stay under the threshold; min: over it
OnFailure = Literal["previous", "zero", "kill"]
ON_FAILURE: tuple[OnFailure, ...] = get_args(OnFailure)


@dataclass(frozen=True)
class Criterion:
    metric: Metric
    threshold: float
    bound: Bound
    min_samples: int = 200
    dry_run: bool = False  # evaluated and reported, never acts
    # Operations it is judged on; () = every operation the step sends to v2.
    operations: tuple[Operation, ...] = ()


@dataclass(frozen=True)
class Step:
    """One percentage level of a phase; its criteria are judged on traffic since it began."""

    stt_percentage: int
    tts_percentage: int
    min_duration_s: float

    def percentage(self, operation: Operation) -> int:
        return self.stt_percentage if operation == "stt" else self.tts_percentage


@dataclass(frozen=True)
class Phase:
    name: str
    steps: tuple[Step, ...]
    features: frozenset[FeatureName]
    criteria: tuple[Criterion, ...]
    approval: bool = False  # promotion out of the phase waits for `voxshift rollout promote`
    # Still pending this long after a step began: pause and say why (None = 2 x min_duration).
    max_duration_s: float | None = None

    @property
    def min_duration_s(self) -> float:
        return sum(s.min_duration_s for s in self.steps)


@dataclass(frozen=True)
class Plan:
    interval_s: float
    max_rollbacks: int
    on_failure: OnFailure
    phases: tuple[Phase, ...]
    # v2 breakers open this long (continuously) count as a failure; None = one interval.
    breaker_open_s: float | None = None
