"""ProviderChain with a real engine as the healthy link: espeak-ng synthesises real audio.

The failing links are deliberately broken providers (that is the thing under test); the answer
that comes back must be real speech from the espeak-ng binary, not a stub.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import numpy as np
import pytest

from voxshift.config import load_settings
from voxshift.engines.base import Availability, EngineInfo, Speech, TTSProvider, TTSRequest
from voxshift.engines.chain import Attempt, BreakerRegistry, ChainResult, ProviderChain
from voxshift.engines.espeak import EspeakTTS
from voxshift.engines.pool import InferencePool
from voxshift.errors import ProviderError

ESPEAK = shutil.which("espeak-ng")
pytestmark = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng binary not installed")

SENTENCE = TTSRequest(text="The quick brown fox jumps over the lazy dog.", language="en")


class Raising:
    def __init__(self, name: str = "cloud") -> None:
        self.name = name
        self.calls = 0

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, "tts", Availability(True))

    async def synthesize(self, request: TTSRequest) -> Speech:
        self.calls += 1
        raise ProviderError(self.name, "HTTP 500 from upstream")


class Hanging(Raising):
    async def synthesize(self, request: TTSRequest) -> Speech:
        self.calls += 1
        await asyncio.sleep(10)
        raise AssertionError("the chain should have timed this call out")


class Outage:
    """The real espeak-ng engine behind a switch: while ``down`` it fails like a crashed engine."""

    def __init__(self, engine: EspeakTTS, name: str = "primary") -> None:
        self.name = name
        self.engine = engine
        self.down = True
        self.calls = 0

    def info(self) -> EngineInfo:
        return self.engine.info()

    async def synthesize(self, request: TTSRequest) -> Speech:
        self.calls += 1
        if self.down:
            raise ProviderError(self.name, "engine crashed")
        return await self.engine.synthesize(request)


@pytest.fixture(scope="module")
def espeak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EspeakTTS]:
    """The real engine, built the way the service builds it (the shared conftest fixture would
    also fetch the Whisper model, which these tests do not need)."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("voxshift-chain"))
    pool = InferencePool(workers=1, queue_size=4)
    engine = EspeakTTS(settings, pool)
    assert engine.info().availability.available, engine.info().availability.reason
    yield engine
    pool.shutdown()


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def chain_of(
    *providers: TTSProvider,
    registry: BreakerRegistry | None = None,
    clock: FakeClock | None = None,
    hang_timeout: float = 0.2,
) -> ProviderChain[TTSProvider]:
    # Only the deliberately hanging fake gets the short timeout; real espeak gets ample time.
    return ProviderChain(
        providers,
        operation="tts",
        timeout_for=lambda name: hang_timeout if name == "hanging" else 10.0,
        breakers=registry or BreakerRegistry(failure_threshold=3, cooldown_s=30.0),
        clock=clock or FakeClock(),
    )


def outcomes(attempts: list[Attempt]) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in attempts]


def assert_real_speech(result: ChainResult[Speech]) -> None:
    speech = result.value
    assert speech.sample_rate >= 16_000
    assert speech.duration_s > 0.3  # a nine-word sentence, not an empty or stub buffer
    samples = np.frombuffer(speech.pcm, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 300  # audible signal, not silence


async def synth(chain: ProviderChain[TTSProvider]) -> ChainResult[Speech]:
    return await chain.run(lambda p: p.synthesize(SENTENCE))


async def test_raising_provider_then_real_espeak(espeak: EspeakTTS) -> None:
    broken = Raising()
    result = await synth(chain_of(broken, espeak))
    assert result.provider == "espeak"
    assert outcomes(result.attempts) == [("cloud", "error"), ("espeak", "ok")]
    assert result.attempts[0].error == "HTTP 500 from upstream"
    assert_real_speech(result)
    assert result.latency_ms >= sum(a.latency_ms for a in result.attempts) * 0.99


async def test_hanging_provider_times_out_then_real_espeak(espeak: EspeakTTS) -> None:
    hanging = Hanging("hanging")
    started = time.perf_counter()
    result = await synth(chain_of(hanging, espeak, hang_timeout=0.2))
    assert time.perf_counter() - started < 5.0
    assert outcomes(result.attempts) == [("hanging", "timeout"), ("espeak", "ok")]
    assert result.attempts[0].latency_ms >= 150.0
    assert_real_speech(result)


async def test_open_breaker_skips_broken_provider_and_espeak_answers(espeak: EspeakTTS) -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=3, cooldown_s=30.0)
    broken = Raising()
    chain = chain_of(broken, espeak, registry=registry, clock=clock)
    for _ in range(3):
        result = await synth(chain)
        assert outcomes(result.attempts) == [("cloud", "error"), ("espeak", "ok")]
    assert registry.snapshot(clock())["cloud"].state == "open"

    clock.now += 5.0
    result = await synth(chain)
    assert outcomes(result.attempts) == [("cloud", "circuit_open"), ("espeak", "ok")]
    assert broken.calls == 3  # skipped, not called
    assert registry.snapshot(clock())["cloud"].retry_in_s == pytest.approx(25.0)
    assert_real_speech(result)


async def test_half_open_probe_reaches_recovered_provider_and_closes_breaker(espeak: EspeakTTS) -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=2, cooldown_s=30.0)
    primary = Outage(espeak, "primary")
    chain = chain_of(primary, espeak, registry=registry, clock=clock)
    await synth(chain)
    await synth(chain)
    assert registry.get("primary").state(clock()) == "open"

    # Still cooling down: espeak answers, primary is not touched.
    clock.now += 29.0
    result = await synth(chain)
    assert outcomes(result.attempts) == [("primary", "circuit_open"), ("espeak", "ok")]
    assert primary.calls == 2

    # Cool-down over, but primary is still down: the single probe fails and re-opens the breaker.
    clock.now += 1.0
    result = await synth(chain)
    assert outcomes(result.attempts) == [("primary", "error"), ("espeak", "ok")]
    assert primary.calls == 3
    assert registry.get("primary").state(clock()) == "open"
    assert registry.get("primary").opened_at == clock()

    # Another cool-down; primary has recovered: the probe reaches it and the breaker closes.
    primary.down = False
    clock.now += 30.0
    result = await synth(chain)
    assert outcomes(result.attempts) == [("primary", "ok")]
    assert result.provider == "primary"
    assert_real_speech(result)
    assert registry.get("primary").state(clock()) == "closed"
    assert registry.get("primary").consecutive_failures == 0
    result = await synth(chain)
    assert outcomes(result.attempts) == [("primary", "ok")]  # espeak no longer needed


async def test_only_one_probe_while_it_is_in_flight_with_real_espeak(espeak: EspeakTTS) -> None:
    clock = FakeClock()
    registry = BreakerRegistry(failure_threshold=1, cooldown_s=30.0)
    hanging = Hanging("hanging")
    chain = chain_of(hanging, espeak, registry=registry, clock=clock, hang_timeout=0.3)
    await synth(chain)  # times out: the breaker opens
    assert hanging.calls == 1
    clock.now += 30.0
    probe = asyncio.create_task(synth(chain))
    await asyncio.sleep(0.05)
    others = await asyncio.gather(synth(chain), synth(chain))
    for other in others:
        assert outcomes(other.attempts) == [("hanging", "circuit_open"), ("espeak", "ok")]
        assert_real_speech(other)
    result = await probe
    assert outcomes(result.attempts) == [("hanging", "timeout"), ("espeak", "ok")]
    assert hanging.calls == 2
