"""CircuitBreaker as a state machine, driven by a fake clock (plain floats)."""

from __future__ import annotations

import pytest

from voxshift.core.breaker import BreakerSnapshot, CircuitBreaker


def opened(threshold: int = 3, cooldown: float = 30.0, at: float = 100.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, cooldown)
    for _ in range(threshold):
        assert breaker.allow(at)
        breaker.record_failure(at)
    assert breaker.state(at) == "open"
    return breaker


def test_starts_closed_and_allows() -> None:
    breaker = CircuitBreaker(3, 30.0)
    assert breaker.state(0.0) == "closed"
    assert breaker.consecutive_failures == 0
    assert breaker.opened_at is None
    assert all(breaker.allow(t) for t in (0.0, 1.0, 1e9))


def test_opens_at_threshold_not_before() -> None:
    breaker = CircuitBreaker(3, 30.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    assert breaker.state(2.0) == "closed"
    assert breaker.allow(2.0)
    breaker.record_failure(3.0)
    assert breaker.state(3.0) == "open"
    assert breaker.consecutive_failures == 3
    assert breaker.opened_at == 3.0


def test_threshold_one_opens_on_first_failure() -> None:
    breaker = CircuitBreaker(1, 5.0)
    breaker.record_failure(0.0)
    assert breaker.state(0.0) == "open"
    assert not breaker.allow(0.0)


def test_open_refuses_until_cooldown_elapsed() -> None:
    breaker = opened(cooldown=30.0, at=100.0)
    assert not breaker.allow(100.0)
    assert not breaker.allow(129.999)
    assert breaker.state(129.999) == "open"


def test_state_reports_half_open_after_cooldown_without_changing_anything() -> None:
    breaker = opened(cooldown=30.0, at=100.0)
    assert breaker.state(130.0) == "half_open"
    assert breaker.state(130.0) == "half_open"
    assert not breaker.probe_in_flight
    # Reading the state did not hand out the probe.
    assert breaker.allow(130.0)


def test_exactly_one_probe_after_cooldown() -> None:
    breaker = opened(cooldown=30.0, at=100.0)
    assert breaker.allow(130.0)  # the probe
    assert breaker.state(130.0) == "half_open"
    assert breaker.probe_in_flight
    # While the probe is in flight nobody else gets through, however much time passes.
    assert not breaker.allow(130.0)
    assert not breaker.allow(131.0)
    assert not breaker.allow(10_000.0)


def test_successful_probe_closes_and_resets_count() -> None:
    breaker = opened(threshold=3, cooldown=30.0, at=100.0)
    assert breaker.allow(130.0)
    breaker.record_success(130.5)
    assert breaker.state(130.5) == "closed"
    assert breaker.consecutive_failures == 0
    assert not breaker.probe_in_flight
    assert breaker.allow(130.6)
    assert breaker.allow(130.7)
    # A fresh count: it takes a full threshold of failures to open again.
    breaker.record_failure(131.0)
    breaker.record_failure(132.0)
    assert breaker.state(132.0) == "closed"
    breaker.record_failure(133.0)
    assert breaker.state(133.0) == "open"
    assert breaker.opened_at == 133.0


def test_failed_probe_reopens_with_fresh_cooldown() -> None:
    breaker = opened(cooldown=30.0, at=100.0)
    assert breaker.allow(130.0)
    breaker.record_failure(135.0)
    assert breaker.state(135.0) == "open"
    assert breaker.opened_at == 135.0
    # The cool-down counts from the failed probe, not from the first opening.
    assert not breaker.allow(160.0)
    assert not breaker.allow(164.999)
    assert breaker.allow(165.0)
    assert not breaker.allow(165.0)


def test_success_resets_consecutive_count_in_closed_state() -> None:
    breaker = CircuitBreaker(3, 30.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    breaker.record_success(3.0)
    assert breaker.consecutive_failures == 0
    breaker.record_failure(4.0)
    breaker.record_failure(5.0)
    assert breaker.state(5.0) == "closed"


def test_non_consecutive_failures_never_open() -> None:
    breaker = CircuitBreaker(3, 30.0)
    now = 0.0
    for _ in range(20):  # fail, fail, succeed - forty failures in all, never three in a row
        for outcome in ("fail", "fail", "ok"):
            now += 1.0
            assert breaker.allow(now)
            if outcome == "fail":
                breaker.record_failure(now)
            else:
                breaker.record_success(now)
    assert breaker.state(now) == "closed"
    assert breaker.opened_at is None


def test_released_probe_can_be_taken_again() -> None:
    breaker = opened(cooldown=30.0, at=100.0)
    assert breaker.allow(130.0)
    breaker.release(130.1)  # e.g. the request was invalid: says nothing about health
    assert breaker.state(130.1) == "half_open"
    assert breaker.allow(130.2)
    assert not breaker.allow(130.3)


def test_release_in_closed_state_is_a_no_op() -> None:
    breaker = CircuitBreaker(2, 30.0)
    breaker.record_failure(1.0)
    breaker.release(2.0)
    assert breaker.consecutive_failures == 1
    assert breaker.state(2.0) == "closed"


def test_straggler_failure_while_open_does_not_extend_cooldown() -> None:
    breaker = opened(threshold=2, cooldown=30.0, at=100.0)
    breaker.record_failure(120.0)  # a call admitted before the breaker opened, failing late
    assert breaker.opened_at == 100.0
    assert breaker.consecutive_failures == 3
    assert breaker.allow(130.0)


def test_snapshot_reports_state_failures_and_retry_time() -> None:
    breaker = CircuitBreaker(2, 30.0)
    assert breaker.snapshot(0.0) == BreakerSnapshot("closed", 0, None, 0.0)
    breaker.record_failure(10.0)
    assert breaker.snapshot(10.0) == BreakerSnapshot("closed", 1, None, 0.0)
    breaker.record_failure(10.0)
    assert breaker.snapshot(25.0) == BreakerSnapshot("open", 2, 10.0, 15.0)
    assert breaker.snapshot(40.0) == BreakerSnapshot("half_open", 2, 10.0, 0.0)
    assert breaker.allow(40.0)
    breaker.record_success(41.0)
    assert breaker.snapshot(41.0) == BreakerSnapshot("closed", 0, 10.0, 0.0)


def test_zero_cooldown_probes_immediately() -> None:
    breaker = CircuitBreaker(1, 0.0)
    breaker.record_failure(5.0)
    assert breaker.state(5.0) == "half_open"
    assert breaker.allow(5.0)
    assert not breaker.allow(5.0)


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (-1, 1.0), (1, -0.1)])
def test_rejects_bad_parameters(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, cooldown)
