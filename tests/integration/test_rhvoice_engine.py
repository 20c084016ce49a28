"""The RHVoice provider on the real library: voices, speed, formats, concurrency, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxshift.audio import probe
from voxshift.audio.formats import OUTPUT_FORMATS
from voxshift.config import Settings
from voxshift.engines.base import TTSRequest
from voxshift.engines.pool import InferencePool
from voxshift.engines.rhvoice import RHVoiceTTS
from voxshift.errors import EmptyInput, ProviderUnavailable
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.engines import build_engines

pytestmark = pytest.mark.slow

SENTENCE = "Добрый день! Чем я могу вам помочь?"


@pytest.fixture(scope="module")
def rhvoice(settings: Settings, pool: InferencePool) -> RHVoiceTTS:
    engine = RHVoiceTTS(settings, pool)
    if not engine.info().availability.available:
        pytest.skip(f"RHVoice not installed: {engine.info().availability.reason}")
    return engine


def test_info_lists_voices_with_licences(rhvoice: RHVoiceTTS) -> None:
    info = rhvoice.info()
    assert info.languages == ("ru",)
    assert {"aleksandr-hq", "anna", "elena", "irina", "aleksandr", "alloy", "oksana"} <= set(info.voices)
    assert not {"arina", "pavel"} & set(info.voices)  # non-commercial: never offered
    assert "Aleksandr-hq CC-BY-SA-4.0" in info.details["voice_licences"]
    assert "Arina CC-BY-NC-ND-4.0" in info.details["voice_licences"]
    assert "Arina" in info.details["non_commercial"]
    assert info.details["sample_rate"] == "24000"


async def test_speaks_24khz_16bit_mono(rhvoice: RHVoiceTTS) -> None:
    speech = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru"))
    assert speech.sample_rate == 24_000
    assert len(speech.pcm) % 2 == 0 and 1.0 < speech.duration_s < 6.0


async def test_voices_differ_and_non_commercial_is_never_used(rhvoice: RHVoiceTTS) -> None:
    default = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru"))
    onyx = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", voice="onyx"))
    nova = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", voice="nova"))
    arina = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", voice="arina"))
    assert onyx.pcm == default.pcm  # onyx -> Aleksandr-hq, the default
    assert nova.pcm != default.pcm  # nova -> Anna
    assert arina.pcm == default.pcm  # asked for by name, still the permissive default


async def test_speed_changes_duration(rhvoice: RHVoiceTTS) -> None:
    normal = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru"))
    fast = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", speed=2.0))
    slow = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", speed=0.5))
    fastest = await rhvoice.synthesize(TTSRequest(SENTENCE, "ru", speed=4.0))  # past RHVoice's 2x clip
    assert fast.duration_s == pytest.approx(normal.duration_s / 2, rel=0.15)
    assert slow.duration_s == pytest.approx(normal.duration_s * 2, rel=0.15)
    assert fastest.duration_s == pytest.approx(normal.duration_s / 4, rel=0.2)


async def test_concurrent_syntheses_equal_sequential_ones(rhvoice: RHVoiceTTS) -> None:
    texts = [f"{SENTENCE} Номер {i}." for i in range(6)]
    sequential = [await rhvoice.synthesize(TTSRequest(t, "ru")) for t in texts]
    concurrent = await asyncio.gather(*(rhvoice.synthesize(TTSRequest(t, "ru")) for t in texts))
    assert [s.pcm for s in concurrent] == [s.pcm for s in sequential]


async def test_refusals(rhvoice: RHVoiceTTS) -> None:
    with pytest.raises(EmptyInput):
        await rhvoice.synthesize(TTSRequest("   ", "ru"))
    with pytest.raises(ProviderUnavailable, match="language de not supported"):
        await rhvoice.synthesize(TTSRequest("Guten Tag", "de"))


def test_missing_library_is_unavailable_with_reason(
    settings: Settings, pool: InferencePool, tmp_path: Path
) -> None:
    missing = settings.model_copy(update={"rhvoice_library": str(tmp_path / "libRHVoice.so.5")})
    info = RHVoiceTTS(missing, pool).info()
    assert info.availability.available is False
    reason = info.availability.reason or ""
    assert "libRHVoice.so.5 cannot be loaded" in reason and "rhvoice-russian" in reason
    assert str(tmp_path) not in reason  # /readyz shows it: no paths


@pytest.fixture(scope="module")
async def service(settings: Settings) -> AsyncIterator[VoiceV2Service]:
    engines = build_engines(settings)
    engines.load()
    yield VoiceV2Service(engines)
    await engines.aclose()


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
async def test_every_output_format(service: VoiceV2Service, rhvoice: RHVoiceTTS, fmt: str) -> None:
    result = await service.synthesize(SENTENCE, language="ru", format=fmt, voice="shimmer")
    assert result.provider_used == "rhvoice"
    seconds = len(result.audio) / 2 / 24_000 if fmt == "pcm" else probe(result.audio)[1]
    assert seconds == pytest.approx(result.duration_seconds, abs=0.15) and seconds > 1.0
