"""MigrationRouter with real engines: flags route, v2 failures fall back to the real reference legacy
(Whisper tiny.en + espeak-ng), both failing is one typed error, and the metrics say what happened.

The only fake is the paid cloud API (OpenAI's wire format on a local server), used to make v2 fail in
controlled ways; every answer a user sees comes from a real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import speech_to_wav
from tests.fakes.openai_server import FakeOpenAI
from voxshift.config import Settings
from voxshift.engines.base import TTSRequest
from voxshift.errors import AllProvidersFailed, EmptyInput, MigrationFailed
from voxshift.services.wiring.runtime import VoiceRuntime, open_runtime

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ALL_ON = {
    "voice_v2_enabled": True,
    "voice_v2_rollout_percentage": 100,
    "voice_v2_features": {"stt_enabled": True, "tts_enabled": True},
}
SENTENCE = "Please send the report to the team today."


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def english_wav(piper: Any) -> bytes:
    return speech_to_wav(asyncio.run(piper.synthesize(TTSRequest(SENTENCE, "en"))))


async def open_started(tmp_path: Path, base: Settings, **fields: Any) -> VoiceRuntime:
    settings = Settings(
        data_dir=tmp_path,
        whisper_model_dir=base.whisper_model_dir,
        workers=2,
        breaker_failure_threshold=2,
        breaker_cooldown_s=600,
        **(ALL_ON | fields),
    )
    runtime = await open_runtime(settings, check=True)
    await runtime.start(watch_flags=False)
    return runtime


@pytest.fixture
async def v2_via_failing_cloud(
    tmp_path: Path, settings: Settings, fake_openai: FakeOpenAI, whisper: Any
) -> AsyncIterator[VoiceRuntime]:
    """v2's STT and TTS chains are the OpenAI provider only, against the local fake."""
    fake_openai.reset()
    runtime = await open_started(
        tmp_path,
        settings,
        stt_providers=["openai"],
        tts_providers={"*": ["openai"]},
        openai_api_key=fake_openai.api_key,
        openai_base_url=fake_openai.base_url,
        provider_timeout_s=5,
    )
    yield runtime
    await runtime.aclose()


def words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split()}


def heard_right(text: str) -> bool:
    """Most of the sentence came back (Piper varies run to run; one misheard word is fine)."""
    return len(words(text) & words(SENTENCE)) >= len(words(SENTENCE)) - 2


async def dashboard(runtime: VoiceRuntime) -> dict[str, Any]:
    await runtime.metrics.flush()
    data: dict[str, Any] = await runtime.metrics.get_migration_dashboard_data(hours=1)
    return data


async def test_flags_route_to_v2_and_to_legacy(
    tmp_path: Path, settings: Settings, english_wav: bytes, whisper: Any
) -> None:
    runtime = await open_started(tmp_path, settings, voice_v2_rollout_percentage=50)
    try:
        # Users on either side of the 50 % cut, by the seed's md5 bucketing.
        routed = {}
        for user in ("user-1", "user-2", "user-3", "user-4", "user-5", "user-6"):
            result = await runtime.router.transcribe_audio(english_wav, language="en", user_id=user)
            routed[user] = result
            expected = runtime.flags.decide("stt", user, None)
            assert result.system_used == ("voice_v2" if expected.use_v2 else "legacy")
            assert not result.fallback
            assert heard_right(result.result.text), result.result.text
        systems = {r.system_used for r in routed.values()}
        assert systems == {"voice_v2", "legacy"}
        v2_provider = next(r.result.provider_used for r in routed.values() if r.system_used == "voice_v2")
        legacy_provider = next(r.result.provider_used for r in routed.values() if r.system_used == "legacy")
        assert (v2_provider, legacy_provider) == ("whisper", "reference-whisper-tiny.en")
        data = await dashboard(runtime)
        n_v2 = sum(r.system_used == "voice_v2" for r in routed.values())
        assert data["latency_metrics"]["stt"]["voice_v2"]["count"] == n_v2
        assert data["latency_metrics"]["stt"]["legacy"]["count"] == 6 - n_v2
        assert data["error_rates"]["stt"] == {"voice_v2": 0.0, "legacy": 0.0}
    finally:
        await runtime.aclose()


async def test_kill_switch_sends_everyone_to_legacy_at_once(
    tmp_path: Path, settings: Settings, english_wav: bytes, whisper: Any
) -> None:
    runtime = await open_started(tmp_path, settings)
    try:
        first = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u")
        assert first.system_used == "voice_v2"
        await runtime.flags.kill(actor="test", reason="incident")
        second = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u")
        assert second.system_used == "legacy" and second.decision_reason == "kill_switch"
    finally:
        await runtime.aclose()


async def test_v2_raising_falls_back_to_legacy_for_stt_and_tts(
    v2_via_failing_cloud: VoiceRuntime, fake_openai: FakeOpenAI, english_wav: bytes
) -> None:
    runtime = v2_via_failing_cloud
    fake_openai.fail_next(500, times=1)
    stt = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u1")
    assert stt.system_used == "legacy" and stt.fallback and stt.fallback_reason == "all_providers_failed"
    assert heard_right(stt.result.text), stt.result.text  # the user still gets the right answer
    fake_openai.fail_next(500, times=1)
    tts = await runtime.router.synthesize_speech("Fallback for speech too.", language="en", user_id="u1")
    assert tts.system_used == "legacy" and tts.fallback  # the seed left this path as `pass`
    assert tts.result.audio[:3] == b"ID3" or tts.result.audio[:2] == b"\xff\xfb"  # mp3
    data = await dashboard(runtime)
    assert data["fallback_rates"]["stt"]["fallbacks"] == 1
    assert data["fallback_rates"]["tts"]["fallbacks"] == 1
    assert data["error_rates"]["stt"]["voice_v2"] == 1.0
    assert data["total_failures"] == {"stt": 0, "tts": 0}


async def test_a_retired_legacy_is_no_fallback(
    v2_via_failing_cloud: VoiceRuntime, fake_openai: FakeOpenAI, english_wav: bytes
) -> None:
    """After the sunset's infrastructure_cleanup the legacy is gone: a v2 failure is the answer."""
    runtime = v2_via_failing_cloud
    await runtime.flags.update(lambda c: c.with_legacy_retired(True), actor="sunset", reason="cleanup done")
    fake_openai.fail_next(500, times=1)
    with pytest.raises(AllProvidersFailed):
        await runtime.router.transcribe_audio(english_wav, language="en", user_id="u1")
    data = await dashboard(runtime)
    assert data["fallback_rates"]["stt"]["fallbacks"] == 0
    assert data["error_rates"]["stt"]["voice_v2"] == 1.0
    ok = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u1")
    assert ok.system_used == "voice_v2" and not ok.fallback


async def test_v2_hanging_past_its_budget_falls_back_in_time(
    tmp_path: Path, settings: Settings, english_wav: bytes, whisper: Any
) -> None:
    # Real Whisper base takes about a second on this clip; a 50 ms budget abandons it for legacy.
    runtime = await open_started(tmp_path, settings, v2_budget_s=0.05)
    try:
        routed = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u2")
        assert routed.system_used == "legacy" and routed.fallback and routed.fallback_reason == "timeout"
        assert heard_right(routed.result.text), routed.result.text
        data = await dashboard(runtime)
        assert data["fallback_rates"]["stt"]["by_reason"] == {"timeout": 1}
        assert data["error_types"]["stt"]["voice_v2"] == {"TimeoutError": 1}
    finally:
        await runtime.aclose()


async def test_open_breaker_skips_v2_without_calling_it(
    v2_via_failing_cloud: VoiceRuntime, fake_openai: FakeOpenAI, english_wav: bytes
) -> None:
    runtime = v2_via_failing_cloud
    fake_openai.fail_next(500, times=10)
    for _ in range(2):  # breaker_failure_threshold=2
        await runtime.router.transcribe_audio(english_wav, language="en", user_id="u3")
    calls_before = len(fake_openai.requests)
    routed = await runtime.router.transcribe_audio(english_wav, language="en", user_id="u3")
    assert routed.fallback and len(fake_openai.requests) == calls_before  # circuit open: no call
    assert runtime.engines.breakers.snapshot(0)["openai"].state in ("open", "half_open")
    assert heard_right(routed.result.text), routed.result.text


async def test_both_failing_is_one_typed_error_with_both_causes(
    v2_via_failing_cloud: VoiceRuntime, fake_openai: FakeOpenAI, english_wav: bytes
) -> None:
    runtime = v2_via_failing_cloud
    fake_openai.fail_next(500, times=1)
    # The real legacy cannot store a non-ASCII user id in object metadata (minio-py refused it):
    # its upload fails, so legacy fails too.
    with pytest.raises(MigrationFailed) as caught:
        await runtime.router.transcribe_audio(english_wav, language="en", user_id="пользователь")
    error = caught.value
    assert error.status == 503 and "voice_v2 failed" in error.message and "legacy" in error.message
    assert error.v2_error is not None and error.legacy_error is not None
    data = await dashboard(runtime)
    assert data["total_failures"]["stt"] == 1


async def test_bad_input_is_a_400_not_a_fallback(
    v2_via_failing_cloud: VoiceRuntime, fake_openai: FakeOpenAI
) -> None:
    runtime = v2_via_failing_cloud
    with pytest.raises(EmptyInput):
        await runtime.router.synthesize_speech("   ", language="en", user_id="u4")
    with pytest.raises(EmptyInput):
        await runtime.router.transcribe_audio(b"", language="en", user_id="u4")
    data = await dashboard(runtime)
    assert data["fallback_rates"]["stt"]["fallbacks"] == 0 and data["fallback_rates"]["tts"]["fallbacks"] == 0
