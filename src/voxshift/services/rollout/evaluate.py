"""One interval's measurements for the state machine: the step's window, the last interval, the
legacy baseline since the rollout began, the feedback, and how long v2's breakers have been open.

Everything read here is an aggregate (time-bucketed counters, one SQL aggregate), so an evaluation
costs the same with a thousand requests in the window or a million.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Protocol

from voxshift.core.rollout.criteria import CriterionResult, evaluate_all
from voxshift.core.rollout.machine import Evaluation, RolloutState
from voxshift.core.rollout.plan import Plan
from voxshift.core.rollout.window import FeedbackWindow, TrafficWindow


class TrafficSource(Protocol):
    """MigrationMetrics: the aggregate traffic of a time window, every replica's flushes included."""

    async def traffic(self, since: float, until: float | None = None) -> TrafficWindow: ...


class FeedbackSource(Protocol):
    async def window(self, since: float, until: float | None = None) -> FeedbackWindow: ...


# {operation: True when every v2 provider of that operation has its breaker open}
BreakerSource = Callable[[], Mapping[str, bool]]


class BreakerWatch:
    """How long v2 has been unavailable without a break: some operation with every provider's
    breaker open. Sampled at each evaluation; a replica that just took the lease starts from 0
    (it cannot know the past), which delays a breaker rollback by at most one interval."""

    def __init__(self, source: BreakerSource | None) -> None:
        self.source = source
        self._open_since: float | None = None

    def open_for(self, now: float, operations: frozenset[str]) -> float:
        if self.source is None or not operations:
            return 0.0
        try:
            states = self.source()
        except Exception:  # an unreadable breaker registry is not an outage of v2
            return 0.0
        down = any(states.get(op, False) for op in operations)
        if not down:
            self._open_since = None
            return 0.0
        if self._open_since is None:
            self._open_since = now
        return now - self._open_since


async def measure(
    plan: Plan,
    state: RolloutState,
    now: float,
    traffic: TrafficSource,
    feedback: FeedbackSource | None,
    *,
    breakers: BreakerWatch | None = None,
    killed: bool = False,
) -> Evaluation:
    """The criteria of the current step on [since, now) and on the last interval, for ``tick``."""
    phase = plan.phases[state.phase]
    step = phase.steps[state.step]
    since = min(state.since, now)
    window = await traffic.traffic(since, now)
    recent_since = max(since, now - plan.interval_s)
    recent = await traffic.traffic(recent_since, now) if recent_since > since else window
    started = min(state.started or since, since)
    baseline = await traffic.traffic(started, now) if started < since else window
    ratings = await feedback.window(since, now) if feedback is not None else FeedbackWindow(since, now)
    results = evaluate_all(phase, step, window, ratings, baseline=baseline)
    # The last interval only speaks up when it fails: it is too short to pass anything.
    recent_results: list[CriterionResult] = []
    if recent is not window:
        recent_results = [
            r
            for r in evaluate_all(phase, step, recent, FeedbackWindow(recent_since, now), baseline=baseline)
            if r.verdict == "fail"
        ]
    on_v2 = frozenset(op for op in ("stt", "tts") if step.percentage(op) > 0)
    open_s = breakers.open_for(now, on_v2) if breakers is not None else 0.0
    return Evaluation(tuple(results), tuple(recent_results), open_s if math.isfinite(open_s) else 0.0, killed)
