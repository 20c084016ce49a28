"""Faults the rollout simulator injects on voice_v2, and the simulated clock they are timed on.

A fault sits in front of every v2 provider (:class:`FaultySTT`, :class:`FaultyTTS` wrap the real or
the fast engines alike), so it reaches the router the way a real one would: through the provider
chain, its breakers and the router's v2 budget. Legacy is never faulted: it is what v2 falls back to.

* ``latency``: every v2 answer comes ``latency_ms`` later (a slow model, a saturated GPU);
* ``errors``: each v2 call fails with probability ``error_rate`` (a provider answering 5xx);
* ``hang``: v2 never answers; only the router's budget ends the wait, as a fallback to legacy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from voxshift.core.rollout.plan import parse_duration
from voxshift.engines.base import (
    EngineInfo,
    Speech,
    STTProvider,
    STTRequest,
    Transcript,
    TTSProvider,
    TTSRequest,
)
from voxshift.errors import InvalidRequest, ProviderError

FaultKind = Literal["latency", "errors", "hang"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


def fault_kind(text: str) -> FaultKind:
    for kind in FAULT_KINDS:
        if text == kind:
            return kind
    raise InvalidRequest(f"--fault must be one of {', '.join(FAULT_KINDS)}, got {text!r}", param="fault")


class SimClock:
    """Simulated unix time: ``start + (monotonic - m0) * scale``. The plan's intervals and minimum
    durations, the metrics' time buckets, the controller and the ratings all read it, so a phase of
    days passes in seconds; request latencies stay real (a request is not compressed, the calendar is)."""

    def __init__(
        self,
        scale: float,
        *,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not scale > 0:
            raise InvalidRequest("the time scale must be a positive number", param="time_scale")
        self.scale = float(scale)
        self.start = time.time() if start is None else float(start)
        self._monotonic = monotonic
        self._m0 = monotonic()

    def reset(self) -> None:
        """Start the simulated calendar now (opening the stack is not part of the plan's time)."""
        self.start = time.time()
        self._m0 = self._monotonic()

    def __call__(self) -> float:
        return self.start + (self._monotonic() - self._m0) * self.scale

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return self() - self.start

    def real(self, simulated_s: float) -> float:
        """How many real seconds ``simulated_s`` simulated seconds take."""
        return simulated_s / self.scale


@dataclass(frozen=True)
class FaultSpec:
    kind: FaultKind
    latency_ms: float = 800.0  # latency: added to every v2 answer
    error_rate: float = 0.2  # errors: share of v2 calls that fail

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidRequest(f"fault must be one of {', '.join(FAULT_KINDS)}", param="fault")
        if not 0 <= self.latency_ms <= 120_000:
            raise InvalidRequest("fault latency must be 0..120000 ms", param="fault_ms")
        if not 0 < self.error_rate <= 1:
            raise InvalidRequest("fault error rate must be in (0, 1]", param="fault_rate")

    def describe(self) -> str:
        if self.kind == "latency":
            return f"v2 latency +{self.latency_ms:g} ms"
        if self.kind == "errors":
            return f"v2 errors {self.error_rate:.0%}"
        return "v2 hangs"


@dataclass(frozen=True)
class FaultPlan:
    """When a fault starts and how long it lasts (simulated seconds). ``phase``: when the rollout
    enters that phase (+ ``delay_s``); else ``at_s`` into the run. ``for_s`` None: to the end."""

    spec: FaultSpec
    at_s: float | None = None
    phase: str | None = None
    delay_s: float = 0.0
    for_s: float | None = None

    def __post_init__(self) -> None:
        if (self.at_s is None) == (self.phase is None):
            raise InvalidRequest("a fault starts at a phase or at a time into the run", param="fault_at")


def parse_fault_at(text: str, phases: tuple[str, ...]) -> tuple[float | None, str | None, float]:
    """``--fault-at``: a phase name (``pilot``), a phase and a delay (``pilot+30m``) or a duration
    into the run (``2d``). Returns (at_s, phase, delay_s)."""
    name, _, delay = text.partition("+")
    if name in phases:
        return None, name, parse_duration(delay, "fault_at") if delay else 0.0
    if delay:
        raise InvalidRequest(
            f"--fault-at: no phase named {name!r} (phases: {', '.join(phases)})", param="fault_at"
        )
    try:
        return parse_duration(text, "fault_at"), None, 0.0
    except InvalidRequest:
        raise InvalidRequest(
            f"--fault-at: {text!r} is neither a phase ({', '.join(phases)}) nor a duration like 2d",
            param="fault_at",
        ) from None


class FaultSwitch:
    """The fault in force now (None: v2 healthy). Flipped by the simulator; read by every v2 call."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.active: FaultSpec | None = None
        self.injected = 0  # v2 calls the fault touched

    async def before_v2(self) -> None:
        fault = self.active
        if fault is None:
            return
        if fault.kind == "latency":
            self.injected += 1
            await asyncio.sleep(fault.latency_ms / 1000.0)
        elif fault.kind == "errors":
            if self.rng.random() < fault.error_rate:
                self.injected += 1
                raise ProviderError("injected-fault", "v2 provider error")
        else:
            self.injected += 1
            # Never answers: the chain's timeout or the router's v2 budget cancels this wait.
            await asyncio.get_running_loop().create_future()


class FaultySTT:
    """A v2 speech-to-text provider with the fault switch in front of it."""

    def __init__(self, inner: STTProvider, faults: FaultSwitch) -> None:
        self.inner = inner
        self.name = inner.name
        self.faults = faults

    def info(self) -> EngineInfo:
        return self.inner.info()

    def load(self) -> None:
        _load(self.inner)

    async def transcribe(self, request: STTRequest) -> Transcript:
        await self.faults.before_v2()
        return await self.inner.transcribe(request)


class FaultyTTS:
    """A v2 text-to-speech provider with the fault switch in front of it."""

    def __init__(self, inner: TTSProvider, faults: FaultSwitch) -> None:
        self.inner = inner
        self.name = inner.name
        self.faults = faults

    def info(self) -> EngineInfo:
        return self.inner.info()

    def load(self) -> None:
        _load(self.inner)

    async def synthesize(self, request: TTSRequest) -> Speech:
        await self.faults.before_v2()
        return await self.inner.synthesize(request)


def _load(provider: object) -> None:
    # EngineSet.load() loads the local models of the providers it finds a load() on: pass it on.
    load = getattr(provider, "load", None)
    if callable(load):
        load()
