"""ProviderChain logic with small in-test providers (the real-engine version is in integration/)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from voxshift.engines.base import Availability, EngineInfo
from voxshift.engines.chain import Attempt, BreakerRegistry, ChainResult, ProviderChain
from voxshift.errors import (
    AllProvidersFailed,
    AttemptSummary,
    EmptyInput,
    InvalidRequest,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

Behaviour = Callable[[], Awaitable[str]]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Fake:
    """A provider whose answer is scripted: a string to return, an exception to raise, or 'hang'."""

    def __init__(self, name: str, *script: str | BaseException, available: bool = True) -> None:
        self.name = name
        self.script = list(script) or ["ok"]
        self.available = available
        self.calls = 0

    def info(self) -> EngineInfo:
        reason = None if self.available else "no API key configured"
        return EngineInfo(self.name, "tts", Availability(self.available, reason))

    async def speak(self, text: str) -> str:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(step, BaseException):
            raise step
        if step == "hang":
            await asyncio.sleep(10)
        return f"{self.name}:{text}"


def make_chain(
    *providers: Fake,
    registry: BreakerRegistry | None = None,
    clock: FakeClock | None = None,
    timeout: float = 1.0,
) -> ProviderChain[Fake]:
    return ProviderChain(
        providers,
        operation="tts",
        timeout_for=lambda name: timeout,
        breakers=registry or BreakerRegistry(failure_threshold=3, cooldown_s=30.0),
        clock=clock or FakeClock(),
    )


def outcomes(attempts: list[Attempt] | list[AttemptSummary]) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in attempts]


async def run(chain: ProviderChain[Fake], text: str = "hi") -> ChainResult[str]:
    return await chain.run(lambda p: p.speak(text))


async def test_first_provider_answers_and_the_rest_are_not_called() -> None:
    a, b = Fake("a"), Fake("b")
    result = await run(make_chain(a, b))
    assert result.value == "a:hi"
    assert result.provider == "a"
    assert outcomes(result.attempts) == [("a", "ok")]
    assert (a.calls, b.calls) == (1, 0)
    assert result.attempts[0].error is None
    assert result.latency_ms >= result.attempts[0].latency_ms >= 0.0


async def test_order_is_respected() -> None:
    a, b, c = Fake("a", ProviderError("a", "down")), Fake("b"), Fake("c")
    result = await run(make_chain(c, a, b))
    assert result.provider == "c"
    result = await run(make_chain(a, c, b))
    assert result.provider == "c"
    assert outcomes(result.attempts) == [("a", "error"), ("c", "ok")]
    assert b.calls == 0


async def test_raising_provider_falls_through_to_next() -> None:
    a, b = Fake("a", ProviderError("a", "HTTP 500")), Fake("b")
    result = await run(make_chain(a, b))
    assert result.value == "b:hi"
    assert result.attempts[0] == Attempt("a", "error", result.attempts[0].latency_ms, "HTTP 500")
    assert outcomes(result.attempts) == [("a", "error"), ("b", "ok")]


async def test_unexpected_exception_is_an_error_attempt_logged_as_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = Fake("a", RuntimeError("index out of range")), Fake("b")
    with caplog.at_level(logging.DEBUG, logger="voxshift.chain"):
        result = await run(make_chain(a, b))
    assert result.provider == "b"
    assert result.attempts[0].outcome == "error"
    assert result.attempts[0].error == "RuntimeError: index out of range"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "RuntimeError: index out of range" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # one line, no traceback at warning level
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_hanging_provider_times_out_and_next_answers() -> None:
    a, b = Fake("a", "hang"), Fake("b")
    started = time.perf_counter()
    result = await run(make_chain(a, b, timeout=0.2))
    elapsed = time.perf_counter() - started
    assert result.provider == "b"
    assert outcomes(result.attempts) == [("a", "timeout"), ("b", "ok")]
    assert 150.0 <= result.attempts[0].latency_ms < 2000.0
    assert result.attempts[0].error == "no answer within 0.2 s"
    assert 0.15 <= elapsed < 2.0
    assert result.latency_ms >= result.attempts[0].latency_ms


async def test_per_provider_timeouts_come_from_timeout_for() -> None:
    a, b = Fake("a", "hang"), Fake("b")
    seen: list[str] = []

    def timeout_for(name: str) -> float:
        seen.append(name)
        return 0.05 if name == "a" else 5.0

    chain = ProviderChain([a, b], "tts", timeout_for, BreakerRegistry(3, 30.0), clock=FakeClock())
    result = await run(chain)
    assert result.provider == "b"
    assert seen[0] == "a" and "b" in seen


async def test_provider_timeout_error_counts_as_timeout() -> None:
    a, b = Fake("a", ProviderTimeout("a", "read timed out")), Fake("b")
    registry = BreakerRegistry(1, 30.0)
    result = await run(make_chain(a, b, registry=registry))
    assert result.attempts[0] == Attempt("a", "timeout", result.attempts[0].latency_ms, "read timed out")
    assert registry.get("a").state(1000.0) == "open"


async def test_breaker_opens_after_threshold_and_provider_is_not_called() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=3, cooldown_s=30.0)
    broken, good = Fake("broken", ProviderError("broken", "HTTP 503")), Fake("good")
    chain = make_chain(broken, good, registry=registry, clock=clock)
    for _ in range(3):
        result = await run(chain)
        assert outcomes(result.attempts) == [("broken", "error"), ("good", "ok")]
    assert broken.calls == 3
    assert registry.get("broken").state(clock()) == "open"

    for _ in range(5):
        clock.advance(1.0)
        result = await run(chain)
        assert outcomes(result.attempts) == [("broken", "circuit_open"), ("good", "ok")]
        assert result.attempts[0].latency_ms == 0.0
        assert "circuit open" in (result.attempts[0].error or "")
    assert broken.calls == 3  # never called while open


async def test_after_cooldown_one_probe_goes_through_and_success_closes() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=2, cooldown_s=30.0)
    flaky = Fake("flaky", ProviderError("flaky", "down"), ProviderError("flaky", "down"), "ok")
    good = Fake("good")
    chain = make_chain(flaky, good, registry=registry, clock=clock)
    await run(chain)
    await run(chain)
    assert registry.get("flaky").state(clock()) == "open"

    clock.advance(29.0)
    result = await run(chain)
    assert result.attempts[0].outcome == "circuit_open"
    assert flaky.calls == 2

    clock.advance(1.0)
    assert registry.get("flaky").state(clock()) == "half_open"
    result = await run(chain)  # the probe: flaky has recovered
    assert outcomes(result.attempts) == [("flaky", "ok")]
    assert flaky.calls == 3
    assert registry.get("flaky").state(clock()) == "closed"
    assert registry.get("flaky").consecutive_failures == 0


async def test_failed_probe_reopens_and_restarts_cooldown() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=10.0)
    broken, good = Fake("broken", ProviderError("broken", "down")), Fake("good")
    chain = make_chain(broken, good, registry=registry, clock=clock)
    await run(chain)
    clock.advance(10.0)
    result = await run(chain)  # the probe fails
    assert outcomes(result.attempts) == [("broken", "error"), ("good", "ok")]
    assert broken.calls == 2
    clock.advance(9.0)
    result = await run(chain)
    assert result.attempts[0].outcome == "circuit_open"
    assert broken.calls == 2


async def test_only_one_probe_while_it_is_in_flight() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=10.0)
    slow = Fake("slow", ProviderError("slow", "down"), "hang")
    good = Fake("good")
    await run(make_chain(slow, good, registry=registry, clock=clock))
    clock.advance(10.0)
    chain = make_chain(slow, good, registry=registry, clock=clock, timeout=0.3)
    probe = asyncio.create_task(run(chain))
    await asyncio.sleep(0.05)  # the probe is now hanging inside slow
    other = await run(chain)
    assert outcomes(other.attempts) == [("slow", "circuit_open"), ("good", "ok")]
    assert "probe" in (other.attempts[0].error or "")
    probe_result = await probe
    assert outcomes(probe_result.attempts) == [("slow", "timeout"), ("good", "ok")]
    assert slow.calls == 2
    assert registry.get("slow").state(clock()) == "open"


async def test_breaker_is_shared_between_chains_through_the_registry() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=2, cooldown_s=30.0)
    espeak = Fake("espeak", ProviderError("espeak", "crashed"))
    en = make_chain(
        Fake("piper", ProviderError("piper", "down")), espeak, Fake("x"), registry=registry, clock=clock
    )
    star = make_chain(espeak, Fake("y"), registry=registry, clock=clock)
    await run(en)
    await run(star)
    assert registry.get("espeak").state(clock()) == "open"
    result = await run(star)
    assert outcomes(result.attempts) == [("espeak", "circuit_open"), ("y", "ok")]
    assert espeak.calls == 2
    assert set(registry.snapshot(clock())) == {"piper", "espeak", "x", "y"}
    assert registry.snapshot(clock())["espeak"].state == "open"


async def test_invalid_request_propagates_without_trying_the_next_provider() -> None:
    a, b = Fake("a", EmptyInput("input text is empty", param="input")), Fake("b")
    registry = BreakerRegistry(1, 30.0)
    with pytest.raises(InvalidRequest) as info:
        await run(make_chain(a, b, registry=registry))
    assert isinstance(info.value, EmptyInput)
    assert b.calls == 0
    assert registry.get("a").consecutive_failures == 0  # the caller's fault, not a's


async def test_overloaded_propagates_and_is_not_a_provider_failure() -> None:
    a, b = Fake("a", Overloaded("queue full", retry_after_s=2)), Fake("b")
    registry = BreakerRegistry(1, 30.0)
    with pytest.raises(Overloaded) as info:
        await run(make_chain(a, b, registry=registry))
    assert info.value.retry_after_s == 2
    assert b.calls == 0
    assert registry.get("a").state(1000.0) == "closed"


async def test_caller_errors_during_a_probe_hand_the_probe_back() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=10.0)
    a = Fake("a", ProviderError("a", "down"), Overloaded("queue full"), "ok")
    chain = make_chain(a, Fake("b"), registry=registry, clock=clock)
    await run(chain)
    clock.advance(10.0)
    with pytest.raises(Overloaded):
        await run(chain)  # took the probe, proved nothing
    result = await run(chain)  # so the next request may probe
    assert outcomes(result.attempts) == [("a", "ok")]
    assert registry.get("a").state(clock()) == "closed"


async def test_cancelled_caller_hands_the_probe_back() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=10.0)
    a = Fake("a", ProviderError("a", "down"), "hang", "ok")
    chain = make_chain(a, Fake("b"), registry=registry, clock=clock)
    await run(chain)
    clock.advance(10.0)
    task = asyncio.create_task(run(chain))
    await asyncio.sleep(0.02)
    assert registry.get("a").probe_in_flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not registry.get("a").probe_in_flight
    result = await run(chain)
    assert result.provider == "a"


async def test_all_fail_raises_with_every_attempt_in_order() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=30.0)
    registry.get("open").record_failure(clock())
    providers = [
        Fake("err", ProviderError("err", "HTTP 500")),
        Fake("open"),
        Fake("slow", "hang"),
        Fake("nokey", available=False),
        Fake("bug", ValueError("bad")),
        Fake("auth", ProviderUnavailable("auth", "HTTP 401")),
    ]
    with pytest.raises(AllProvidersFailed) as info:
        await run(make_chain(*providers, registry=registry, clock=clock, timeout=0.05))
    exc = info.value
    assert exc.operation == "tts"
    assert outcomes(exc.attempts) == [
        ("err", "error"),
        ("open", "circuit_open"),
        ("slow", "timeout"),
        ("nokey", "unavailable"),
        ("bug", "error"),
        ("auth", "unavailable"),
    ]
    assert all(isinstance(a, AttemptSummary) for a in exc.attempts)
    assert [a.error for a in exc.attempts][3:] == ["no API key configured", "ValueError: bad", "HTTP 401"]
    assert "err: error (HTTP 500)" in exc.message
    assert exc.status == 503
    assert providers[1].calls == 0


async def test_no_providers_raises_all_failed() -> None:
    with pytest.raises(AllProvidersFailed, match="no provider configured"):
        await run(make_chain())


async def test_unavailable_providers_are_skipped_and_not_counted() -> None:
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=30.0)
    nokey = Fake("nokey", available=False)
    auth = Fake("auth", ProviderUnavailable("auth", "HTTP 401 invalid key"))
    good = Fake("good")
    chain = make_chain(nokey, auth, good, registry=registry)
    for _ in range(3):
        result = await run(chain)
        assert outcomes(result.attempts) == [
            ("nokey", "unavailable"),
            ("auth", "unavailable"),
            ("good", "ok"),
        ]
    assert nokey.calls == 0  # info() said so: not called at all
    assert auth.calls == 3  # config problems do not open the breaker
    assert result.attempts[0].error == "no API key configured"
    assert registry.get("auth").state(1000.0) == "closed"


async def test_info_raising_counts_as_an_error() -> None:
    class BrokenInfo(Fake):
        def info(self) -> EngineInfo:
            raise OSError("model file vanished")

    registry = BreakerRegistry(failure_threshold=1, cooldown_s=30.0)
    broken = BrokenInfo("broken")
    result = await run(make_chain(broken, Fake("good"), registry=registry))
    assert outcomes(result.attempts) == [("broken", "error"), ("good", "ok")]
    assert result.attempts[0].error == "OSError: model file vanished"
    assert broken.calls == 0
    assert registry.get("broken").state(1000.0) == "open"


async def test_unavailable_during_half_open_hands_the_probe_back() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=10.0)
    a = Fake("a", ProviderError("a", "down"), "ok")
    chain = make_chain(a, Fake("b"), registry=registry, clock=clock)
    await run(chain)
    clock.advance(10.0)
    a.available = False
    result = await run(chain)
    assert outcomes(result.attempts) == [("a", "unavailable"), ("b", "ok")]
    assert not registry.get("a").probe_in_flight
    a.available = True
    result = await run(chain)
    assert outcomes(result.attempts) == [("a", "ok")]


# --- a provider's rejection of the input is not a provider fault (issue 9 §3) ----------------------


async def test_input_rejection_never_counts_against_the_breaker_and_is_a_400_when_nobody_took_it() -> None:
    from voxshift.errors import InputRejected

    registry = BreakerRegistry(failure_threshold=3, cooldown_s=30.0)
    a = Fake("a", InputRejected("a", "cannot speak this text: embedded null character", param="input"))
    chain = make_chain(a, registry=registry)
    for _ in range(5):
        with pytest.raises(InvalidRequest) as bad:
            await run(chain)
        assert bad.value.status == 400 and bad.value.param == "input"
        assert "embedded null character" in bad.value.message
    assert registry.get("a").snapshot(0).state == "closed"
    assert a.calls == 5  # never skipped as "circuit open"


async def test_a_rejection_moves_on_and_another_provider_may_take_the_input() -> None:
    from voxshift.errors import InputRejected

    a, b = Fake("a", InputRejected("a", "request rejected (HTTP 400): bad voice")), Fake("b")
    result = await run(make_chain(a, b))
    assert result.provider == "b"
    assert outcomes(result.attempts) == [("a", "rejected"), ("b", "ok")]


async def test_a_rejection_beside_a_real_failure_stays_a_503() -> None:
    from voxshift.errors import InputRejected

    a, b = Fake("a", InputRejected("a", "HTTP 400")), Fake("b", ProviderError("b", "boom"))
    with pytest.raises(AllProvidersFailed) as failed:
        await run(make_chain(a, b))
    assert outcomes(failed.value.attempts) == [("a", "rejected"), ("b", "error")]
