"""A circuit breaker per provider, as a pure state machine.

The breaker owns no clock: every method takes ``now`` (seconds on any monotonic scale), so the
chain passes ``time.monotonic()`` and tests pass plain floats. It does no I/O and imports only the
standard library, so it can be reasoned about (and tested) without an event loop.

States:

* ``closed`` - calls go through; consecutive failures are counted and the breaker opens at the
  threshold.
* ``open`` - calls are refused until ``cooldown_s`` has passed since the breaker opened.
* ``half_open`` - the cool-down is over: exactly one probe call is let through. Its success closes
  the breaker; its failure re-opens it with a fresh cool-down. While the probe is in flight every
  other call is refused, so a provider that is still down costs one slow call, not a stampede.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerSnapshot:
    """What /readyz and ``voxshift engines`` report about one breaker."""

    state: BreakerState
    failures: int  # consecutive failures so far
    opened_at: float | None  # on the clock the breaker was driven with; None when never opened
    retry_in_s: float  # seconds until a probe will be let through; 0.0 unless open


class CircuitBreaker:
    def __init__(self, failure_threshold: int, cooldown_s: float) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def opened_at(self) -> float | None:
        """When the breaker last opened (kept after it closes, for reporting)."""
        return self._opened_at

    @property
    def probe_in_flight(self) -> bool:
        return self._probe_in_flight

    def state(self, now: float) -> BreakerState:
        """The state as a caller at ``now`` would meet it; reading it changes nothing.

        An open breaker whose cool-down is over reports ``half_open``: the next ``allow`` would
        let a probe through, and that is what a health report should say.
        """
        if self._state == "open" and self._cooldown_over(now):
            return "half_open"
        return self._state

    def allow(self, now: float) -> bool:
        """May a call go to the provider now? A ``True`` in half-open hands out the one probe."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if not self._cooldown_over(now):
                return False
            self._state = "half_open"
            self._probe_in_flight = False
        # half_open: one probe at a time.
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self, now: float) -> None:
        """The provider answered: it is healthy, whatever state we thought it was in."""
        del now  # part of the uniform interface; a success needs no timestamp
        self._state = "closed"
        self._failures = 0
        self._probe_in_flight = False

    def record_failure(self, now: float) -> None:
        """The provider failed in a way that says something about its health."""
        self._failures += 1
        if self._state == "half_open":
            # The probe (or a call admitted before the breaker opened) failed: still broken.
            self._open(now)
        elif self._state == "closed" and self._failures >= self.failure_threshold:
            self._open(now)
        # Already open: a straggler admitted before the breaker opened. Do not push the
        # cool-down further out, or a burst of slow failures would keep the provider shut
        # for longer than ``cooldown_s`` after the last call we chose to send.

    def release(self, now: float) -> None:
        """An admitted call ended without telling us anything about the provider's health.

        For example the request itself was invalid, the service was overloaded, the provider is
        not configured, or the caller was cancelled. The call does not count either way; a probe
        it was holding is handed back so the next caller can probe instead. Without this a
        half-open breaker whose probe never reported would refuse every call for ever.
        """
        del now
        if self._state == "half_open":
            self._probe_in_flight = False

    def snapshot(self, now: float) -> BreakerSnapshot:
        state = self.state(now)
        retry_in = 0.0
        if state == "open" and self._opened_at is not None:
            retry_in = max(0.0, self._opened_at + self.cooldown_s - now)
        return BreakerSnapshot(
            state=state, failures=self._failures, opened_at=self._opened_at, retry_in_s=retry_in
        )

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._probe_in_flight = False

    def _cooldown_over(self, now: float) -> bool:
        return self._opened_at is not None and now - self._opened_at >= self.cooldown_s

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state!r}, failures={self._failures}, "
            f"threshold={self.failure_threshold}, cooldown_s={self.cooldown_s})"
        )
