"""STT and TTS caches with real engines, on both backend pairs (embedded and Redis + S3)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import speech_to_wav
from voxshift.config import Settings
from voxshift.engines.base import Speech
from voxshift.services.voice.cache import VoiceCache
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.services.wiring.engines import EngineSet, build_engines
from voxshift.stores.objects.keys import decode_agent_segment

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def engine_set(settings: Settings, whisper: Any, piper: Any) -> EngineSet:
    # Models are process-wide: this set reuses the ones the session fixtures loaded.
    engines = build_engines(settings)
    engines.load()
    return engines


def backend_settings(
    request: pytest.FixtureRequest, tmp_path: Path, base: Settings, **extra: Any
) -> Settings:
    """Settings on the embedded backends, or on the real Redis + SeaweedFS servers."""
    fields: dict[str, Any] = {
        "data_dir": tmp_path,
        "whisper_model_dir": base.whisper_model_dir,
        "workers": base.workers,
        "queue_size": base.queue_size,
        "voice_v2_features": {"caching_enabled": True},
    }
    if request.param == "redis+s3":
        redis = request.getfixturevalue("clean_redis")
        s3 = request.getfixturevalue("s3_server")
        fields |= {
            "state_url": redis.url,
            "storage_url": s3.storage_url(),
            "storage_access_key": s3.access_key,
            "storage_secret_key": s3.secret_key,
            # A fresh bucket per test: SeaweedFS is shared by the whole session.
            "voice_v2_minio_bucket": "v2-" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16],
        }
    return Settings(**(fields | extra))


@pytest.fixture(params=["embedded", "redis+s3"])
async def backends(
    request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
) -> AsyncIterator[Backends]:
    opened = await open_backends(backend_settings(request, tmp_path, settings), check=True)
    yield opened
    await opened.aclose()


def make_service(engine_set: EngineSet, backends: Backends, **agents: Any) -> VoiceV2Service:
    cache = VoiceCache(
        backends.v2_state, backends.objects, backends.state_dependency, backends.objects_dependency
    )

    async def lookup(agent_id: str) -> Any:
        return agents.get(agent_id)

    return VoiceV2Service(engine_set, cache, lookup, settings=backends.settings)


@pytest.fixture(scope="module")
def english_wav(piper: Any, pool: Any) -> bytes:
    from voxshift.engines.base import TTSRequest

    speech: Speech = asyncio.run(piper.synthesize(TTSRequest("The cache keeps every answer.", "en")))
    return speech_to_wav(speech)


async def test_stt_hit_returns_the_stored_transcript(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    service = make_service(engine_set, backends)
    first = await service.transcribe(english_wav, language="en")
    second = await service.transcribe(english_wav, language="en")
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.cached and not first.cached
    assert second.text == first.text and second.segments == first.segments
    assert second.provider_used == first.provider_used == "whisper"
    assert second.attempts == ()  # no provider ran
    assert service.cache is not None
    assert service.cache.stats.snapshot()["stt"] == {"hit": 1, "miss": 1, "hit_rate_percent": 50}
    keys = [k async for k in backends.v2_state.scan("cache:stt:")]
    assert len(keys) == 1 and hashlib.sha256(english_wav).hexdigest() in keys[0]
    ttl = await backends.v2_state.ttl(keys[0])
    assert ttl is not None and 86000 < ttl <= 86400  # seed: stt_cache 24 h


async def test_same_size_different_audio_is_not_a_hit(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    # The legacy key (size:mime:provider) would have returned the first transcript for the second clip.
    service = make_service(engine_set, backends)
    header, body = english_wav[:44], english_wav[44:]
    reversed_body = bytes(reversed(body[: len(body) // 2 * 2]))
    other = header + reversed_body + body[len(reversed_body) :]
    assert len(other) == len(english_wav) and other != english_wav
    first = await service.transcribe(english_wav, language="en")
    second = await service.transcribe(other, language="en")
    assert second.cache == "miss"
    assert first.cache == "miss"


async def test_language_is_part_of_the_key(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    service = make_service(engine_set, backends)
    assert (await service.transcribe(english_wav, language="en")).cache == "miss"
    assert (await service.transcribe(english_wav, language="auto")).cache == "miss"
    assert (await service.transcribe(english_wav, language="en")).cache == "hit"


async def test_caching_is_off_unless_the_feature_flag_is_on(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    features = backends.settings.voice_v2_features.model_copy(update={"caching_enabled": False})
    backends.settings = backends.settings.model_copy(update={"voice_v2_features": features})
    service = make_service(engine_set, backends)
    results = [await service.transcribe(english_wav, language="en") for _ in range(2)]
    assert [r.cache for r in results] == ["disabled", "disabled"]
    assert [k async for k in backends.v2_state.scan("cache:")] == []


class _AgentSettings:
    def __init__(self, cache_enabled: bool, cache_ttl_hours: int) -> None:
        self.cache_enabled = cache_enabled
        self.cache_ttl_hours = cache_ttl_hours


async def test_agent_settings_can_turn_caching_off_and_set_the_stt_ttl(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    service = make_service(
        engine_set, backends, quiet=_AgentSettings(False, 24), brief=_AgentSettings(True, 2)
    )
    off = [await service.transcribe(english_wav, language="en", agent_id="quiet") for _ in range(2)]
    assert [r.cache for r in off] == ["disabled", "disabled"]
    on = [await service.transcribe(english_wav, language="en", agent_id="brief") for _ in range(2)]
    assert [r.cache for r in on] == ["miss", "hit"]
    (key,) = [k async for k in backends.v2_state.scan("cache:stt:")]
    ttl = await backends.v2_state.ttl(key)
    assert ttl is not None and 7000 < ttl <= 7200  # the agent's cache_ttl_hours=2


async def test_identical_concurrent_requests_compute_once(
    engine_set: EngineSet, backends: Backends, english_wav: bytes
) -> None:
    service = make_service(engine_set, backends)
    results = await asyncio.gather(*(service.transcribe(english_wav, language="en") for _ in range(6)))
    statuses = sorted(r.cache for r in results)
    assert statuses.count("miss") == 1
    assert statuses.count("coalesced") + statuses.count("hit") == 5
    assert len({r.text for r in results}) == 1


async def test_tts_hit_serves_the_stored_bytes_from_object_storage(
    engine_set: EngineSet, backends: Backends
) -> None:
    service = make_service(engine_set, backends)
    first = await service.synthesize(
        "Stored once, served again.", language="en", format="mp3", agent_id="agent:ü@x.y"
    )
    second = await service.synthesize(
        "Stored once, served again.", language="en", format="mp3", agent_id="agent:ü@x.y"
    )
    assert (first.cache, second.cache) == ("miss", "hit")
    assert first.object_key is not None and second.object_key == first.object_key
    stored, info = await backends.objects.get(first.object_key)
    # Piper is not bit-identical run to run: compare with the stored bytes, never a fresh synthesis.
    assert second.audio == stored == first.audio
    assert info.content_type == "audio/mpeg"
    today = datetime.now(UTC)
    match = re.fullmatch(r"audio/([^/]+)/(\d{4})/(\d{2})/(\d{2})/([0-9a-f]{64})\.mp3", first.object_key)
    assert match is not None
    assert decode_agent_segment(match.group(1)) == "agent:ü@x.y"
    assert match.group(2, 3, 4) == (f"{today:%Y}", f"{today:%m}", f"{today:%d}")
    assert match.group(5) == hashlib.sha256(stored).hexdigest()
    assert info.metadata["agent-id"] == "agent:ü@x.y"
    assert info.metadata["format"] == "mp3"
    assert abs(float(info.metadata["duration-seconds"]) - first.duration_seconds) < 0.01
    (ref_key,) = [k async for k in backends.v2_state.scan("cache:tts:")]
    ttl = await backends.v2_state.ttl(ref_key)
    assert ttl is not None and 3500 < ttl <= 3600  # seed: tts_cache 1 h
    assert len(await backends.v2_state.get(ref_key) or b"") < 1000  # a reference, not the audio


async def test_tts_format_and_voice_are_part_of_the_key(engine_set: EngineSet, backends: Backends) -> None:
    service = make_service(engine_set, backends)
    text = "One text, several answers."
    runs = [
        await service.synthesize(text, language="en", format="wav"),
        await service.synthesize(text, language="en", format="flac"),
        await service.synthesize(text, language="en", format="wav", voice="nova"),
        await service.synthesize(text, language="en", format="wav"),
    ]
    assert [r.cache for r in runs] == ["miss", "miss", "miss", "hit"]
    assert runs[1].content_type == "audio/flac"


async def test_a_lost_object_is_a_miss_not_an_error(engine_set: EngineSet, backends: Backends) -> None:
    service = make_service(engine_set, backends)
    first = await service.synthesize("Deleted behind our back.", language="en", format="wav")
    assert first.object_key is not None
    await backends.objects.delete(first.object_key)
    again = await service.synthesize("Deleted behind our back.", language="en", format="wav")
    assert again.cache == "miss" and again.audio[:4] == b"RIFF"
