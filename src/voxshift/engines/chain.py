"""An ordered chain of providers: the first healthy one answers, every attempt is recorded.

Each call gets its own timeout, and each provider has a circuit breaker, shared process-wide
through a :class:`BreakerRegistry`, so a provider that keeps failing is skipped at once instead of
costing every request a timeout. Failures are sorted by whose fault they are:

* the provider's (an error, a timeout, a bug) - recorded, counted by its breaker, next provider;
* configuration (``ProviderUnavailable``: no key, a 401, a model not installed) - recorded and
  skipped, but not counted: the breaker measures health, and re-trying will not fix config;
* the caller's (``InvalidRequest``) or the whole service's (``Overloaded``) - raised at once: the
  next provider would fail the same way, and the entry points map these to a 4xx / 503;
* a provider's refusal of this input (``InputRejected``: a vendor's HTTP 400, text an engine
  cannot speak) - recorded, never counted by the breaker (bad input must not shut a healthy
  provider out for everyone), next provider; when no provider answered and one rejected the input
  (none failed), the request is the caller's problem: ``InvalidRequest`` (400), not a 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

from voxshift.core.breaker import BreakerSnapshot, CircuitBreaker
from voxshift.engines.base import EngineInfo
from voxshift.errors import (
    AllProvidersFailed,
    AttemptSummary,
    InputRejected,
    InvalidRequest,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

logger = logging.getLogger("voxshift.chain")

Outcome = Literal["ok", "error", "timeout", "unavailable", "circuit_open", "rejected"]


class ChainProvider(Protocol):
    """What the chain needs of a provider; STTProvider and TTSProvider both qualify."""

    @property
    def name(self) -> str: ...

    def info(self) -> EngineInfo: ...


P = TypeVar("P", bound=ChainProvider)
T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: Outcome
    latency_ms: float
    error: str | None = None

    def summary(self) -> AttemptSummary:
        return AttemptSummary(
            provider=self.provider, outcome=self.outcome, latency_ms=self.latency_ms, error=self.error
        )


@dataclass(frozen=True)
class ChainResult(Generic[T]):
    value: T
    provider: str  # the provider that answered
    attempts: list[Attempt] = field(default_factory=list)  # every attempt, the answering one last
    latency_ms: float = 0.0  # the whole run, skipped and failed providers included


class BreakerRegistry:
    """One breaker per provider name for the whole process.

    Chains are built per route (the TTS chain for "en" and the one for "*" both hold espeak); the
    health of a provider does not depend on which route called it, so they share its breaker.
    """

    def __init__(self, failure_threshold: int, cooldown_s: float) -> None:
        # Validate now rather than on the first get(), so bad settings fail at start-up.
        CircuitBreaker(failure_threshold, cooldown_s)
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(self.failure_threshold, self.cooldown_s)
        return breaker

    def names(self) -> list[str]:
        return sorted(self._breakers)

    def snapshot(self, now: float) -> dict[str, BreakerSnapshot]:
        return {name: self._breakers[name].snapshot(now) for name in self.names()}


class ProviderChain(Generic[P]):
    def __init__(
        self,
        providers: Sequence[P],
        operation: str,
        timeout_for: Callable[[str], float],
        breakers: BreakerRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` drives the breakers only (tests pass a fake one to step over a cool-down);
        latencies are always measured with ``time.perf_counter`` so they stay real."""
        self.providers: tuple[P, ...] = tuple(providers)
        self.operation = operation
        self.timeout_for = timeout_for
        self.breakers = breakers
        self.clock = clock
        for provider in self.providers:
            breakers.get(provider.name)  # so a snapshot lists every provider, called yet or not

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.providers]

    async def run(self, call: Callable[[P], Awaitable[T]]) -> ChainResult[T]:
        """Try ``call`` on each provider in order; return the first answer.

        Raises ``InvalidRequest`` and ``Overloaded`` unchanged, and ``AllProvidersFailed`` (with
        every attempt, in order) when no provider answered.
        """
        run_started = time.perf_counter()
        attempts: list[Attempt] = []
        rejection: InputRejected | None = None
        for provider in self.providers:
            name = provider.name
            breaker = self.breakers.get(name)
            if not breaker.allow(self.clock()):
                attempts.append(Attempt(name, "circuit_open", 0.0, _open_reason(breaker, self.clock())))
                continue
            started = time.perf_counter()
            # Every path below must report to the breaker at most once (info() included: a provider
            # whose info() raises is broken like any other failure); the flag lets the
            # ``finally`` hand back a half-open probe on the paths that do not (unavailable, cancellation,
            # errors we re-raise), so a lost probe cannot shut the provider out for good.
            reported = False
            try:
                availability = provider.info().availability
                if not availability.available:
                    attempts.append(Attempt(name, "unavailable", _ms_since(started), availability.reason))
                    continue
                value = await asyncio.wait_for(call(provider), self.timeout_for(name))
                breaker.record_success(self.clock())
                reported = True
                attempts.append(Attempt(name, "ok", _ms_since(started)))
                return ChainResult(value, name, attempts, _ms_since(run_started))
            except (InvalidRequest, Overloaded):
                raise
            except InputRejected as exc:
                attempts.append(Attempt(name, "rejected", _ms_since(started), _message(exc)))
                rejection = rejection or exc
                logger.info("%s provider %s rejected the input: %s", self.operation, name, _message(exc))
            except ProviderUnavailable as exc:
                attempts.append(Attempt(name, "unavailable", _ms_since(started), _message(exc)))
                logger.info("%s provider %s unavailable: %s", self.operation, name, _message(exc))
            except (TimeoutError, ProviderTimeout) as exc:
                # TimeoutError is asyncio.wait_for's (the same class as asyncio.TimeoutError on
                # 3.11+); ProviderTimeout is a provider's own, e.g. its HTTP client's.
                breaker.record_failure(self.clock())
                reported = True
                detail = _message(exc) if isinstance(exc, ProviderTimeout) else None
                detail = detail or f"no answer within {self.timeout_for(name):g} s"
                attempts.append(Attempt(name, "timeout", _ms_since(started), detail))
                logger.info("%s provider %s timed out: %s", self.operation, name, detail)
            except ProviderError as exc:
                breaker.record_failure(self.clock())
                reported = True
                attempts.append(Attempt(name, "error", _ms_since(started), _message(exc)))
                logger.info("%s provider %s failed: %s", self.operation, name, _message(exc))
            except Exception as exc:
                # A bug in a provider: count it like any failure, keep the service answering, and
                # log one line (the traceback only at debug level, to avoid log spam in a storm).
                breaker.record_failure(self.clock())
                reported = True
                attempts.append(Attempt(name, "error", _ms_since(started), _message(exc)))
                logger.warning("%s provider %s raised %s", self.operation, name, _message(exc))
                logger.debug("%s provider %s traceback", self.operation, name, exc_info=True)
            finally:
                if not reported:
                    breaker.release(self.clock())
        if rejection is not None and not any(a.outcome in ("error", "timeout") for a in attempts):
            reasons = "; ".join(f"{a.provider}: {a.error}" for a in attempts if a.outcome == "rejected")
            raise InvalidRequest(f"the input cannot be processed: {reasons}", param=rejection.param)
        raise AllProvidersFailed(self.operation, [a.summary() for a in attempts])


def _message(exc: BaseException) -> str:
    if isinstance(exc, ProviderError):
        # ProviderError prefixes the provider's name; the attempt already names it.
        prefix = f"{exc.provider}: "
        return exc.message.removeprefix(prefix)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open_reason(breaker: CircuitBreaker, now: float) -> str:
    snap = breaker.snapshot(now)
    if snap.state == "half_open":
        return "circuit half-open: a probe is in flight"
    return f"circuit open after {snap.failures} consecutive failures; retry in {snap.retry_in_s:.1f} s"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
