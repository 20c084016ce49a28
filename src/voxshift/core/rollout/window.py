"""What the rollout criteria read: aggregates of one time window, never individual requests.

A :class:`TrafficWindow` is built by the metrics service from its time-bucketed counters (so its
size does not grow with traffic), a :class:`FeedbackWindow` from the feedback table's aggregate
query. Both are plain values, so the criteria and the state machine can be tested without a store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from voxshift.core.stats import WindowStats
from voxshift.core.vocabulary import OPERATIONS, Operation

SYSTEM_V2 = "voice_v2"
SYSTEM_LEGACY = "legacy"


@dataclass
class OperationWindow:
    """One operation over the window. ``v2`` counts every v2 attempt, including those that failed
    and fell back to legacy (the router records them as v2 errors); ``legacy`` counts requests
    legacy served or failed, fallbacks included."""

    v2: WindowStats = field(default_factory=WindowStats)
    legacy: WindowStats = field(default_factory=WindowStats)
    fallbacks: int = 0  # v2 -> legacy
    total_failures: int = 0  # both systems failed
    cache_hits: int = 0  # v2 cache lookups that answered
    cache_lookups: int = 0  # hits + misses (lookups skipped because caching was off do not count)

    def merge(self, other: OperationWindow) -> OperationWindow:
        self.v2.merge(other.v2)
        self.legacy.merge(other.legacy)
        self.fallbacks += other.fallbacks
        self.total_failures += other.total_failures
        self.cache_hits += other.cache_hits
        self.cache_lookups += other.cache_lookups
        return self


@dataclass
class TrafficWindow:
    """Both operations over ``[start, end)`` (unix seconds)."""

    start: float
    end: float
    operations: dict[str, OperationWindow] = field(
        default_factory=lambda: {op: OperationWindow() for op in OPERATIONS}
    )

    def __getitem__(self, operation: Operation) -> OperationWindow:
        window = self.operations.get(operation)
        if window is None:
            window = self.operations[operation] = OperationWindow()
        return window

    @property
    def requests(self) -> int:
        return sum(w.v2.requests + w.legacy.requests for w in self.operations.values())


@dataclass(frozen=True)
class RatingStats:
    """Ratings 1..5 of one (system, operation): enough for a mean and its confidence interval."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def stdev(self) -> float | None:
        """Sample standard deviation (n - 1), None below two ratings."""
        if self.count < 2:
            return None
        var = (self.total_sq - self.total * self.total / self.count) / (self.count - 1)
        return math.sqrt(max(0.0, var))

    def __add__(self, other: RatingStats) -> RatingStats:
        return RatingStats(self.count + other.count, self.total + other.total, self.total_sq + other.total_sq)


@dataclass
class FeedbackWindow:
    """Ratings over a window, keyed by (system, operation)."""

    start: float
    end: float
    ratings: dict[tuple[str, str], RatingStats] = field(default_factory=dict)

    def of(self, system: str | None = None, operation: str | None = None) -> RatingStats:
        """Pooled ratings of one system and/or operation (None = any)."""
        out = RatingStats()
        for (sys_, op), stats in self.ratings.items():
            if (system is None or sys_ == system) and (operation is None or op == operation):
                out = out + stats
        return out
