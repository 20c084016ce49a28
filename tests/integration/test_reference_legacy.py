"""The reference legacy backend on SQLite + a local folder and on a real Redis + SeaweedFS.

It must leave exactly the data PlatformAI-HUB's voice service left: the input uploaded to
``voice-files`` before the cache lookup (``audio/mpeg`` whatever it is), ``stt_cache:{md5}`` keyed
by size, mime type and first provider (so equal-sized recordings collide), per-agent TTLs, TTS output
under ``.mp3``, non-ASCII ids failing the upload; and nothing under ``voice_v2:`` or in
``voice-v2-files``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import speech_to_wav
from tests.fixtures.s3_server import SeaweedS3
from voxshift.audio import probe
from voxshift.engines.base import Speech, TTSRequest
from voxshift.engines.pool import InferencePool
from voxshift.errors import (
    EmptyInput,
    PayloadTooLarge,
    ProviderError,
    ProviderUnavailable,
    UnsupportedMediaType,
)
from voxshift.legacy import LegacyVoiceBackend
from voxshift.legacy.reference import STT_PROVIDER, TTS_PROVIDER, ReferenceLegacyBackend
from voxshift.stores.objects import ObjectInfo, ObjectStorage, open_object_storage
from voxshift.stores.state import StateStore, open_state_store

# One loop for the fixtures and the tests: the stores' connections belong to the loop that opened them.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

AGENT = "agent_support_bot_1a2b3c4d"
USER = "user-42"
SENTENCE_A = "The weather is lovely today and the river is calm."
SENTENCE_B = "Please send the quarterly report to the finance team."
SIGNING_KEY = b"reference-legacy-test-signing-key"
UUID4_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"


def key_re(agent: str, user: str, ext: str) -> str:
    """The legacy object key; group 1 is the UTC hour path."""
    hour = r"(\d{4}/\d{2}/\d{2}/\d{2})"
    return rf"^voice/{re.escape(agent)}/{re.escape(user)}/{hour}/{UUID4_RE}{re.escape(ext)}$"


JSON_FIELDS = [
    "success", "text", "audio_url", "audio_data",
    "provider_used", "processing_time", "error_message", "metadata",
]  # fmt: skip
LEGACY_PREFIXES = ("stt_cache:", "agent_voice_settings:")
TTL_SLACK_S = 600  # how long a test may run between the write and the TTL read


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def heard(sentence: str, text: str) -> bool:
    expected = words(sentence)
    return len(expected & words(text)) >= 0.7 * len(expected)


def md5_key(size: int, provider: str) -> str:
    return "stt_cache:" + hashlib.md5(f"{size}:audio/mpeg:{provider}".encode()).hexdigest()


@dataclass(frozen=True)
class Clips:
    a: bytes  # SENTENCE_A
    b: bytes  # SENTENCE_B, padded with silence to exactly len(a)
    c: bytes  # SENTENCE_A again, with more silence: another size


@pytest.fixture(scope="module")
async def clips(piper: Any) -> Clips:
    one: Speech = await piper.synthesize(TTSRequest(SENTENCE_A, "en"))
    two: Speech = await piper.synthesize(TTSRequest(SENTENCE_B, "en"))
    length = max(len(one.pcm), len(two.pcm))

    def padded(speech: Speech, size: int) -> bytes:
        return speech_to_wav(replace(speech, pcm=speech.pcm + bytes(size - len(speech.pcm))))

    a, b = padded(one, length), padded(two, length)
    assert len(a) == len(b) and a != b
    return Clips(a=a, b=b, c=padded(one, length + 22050))


@dataclass
class Harness:
    kind: str
    backend: ReferenceLegacyBackend
    state: StateStore
    objects: ObjectStorage
    s3: SeaweedS3 | None
    root: Path | None

    async def objects_under(self, prefix: str = "") -> list[ObjectInfo]:
        return [info async for info in self.objects.list(prefix)]

    async def keys(self, prefix: str = "") -> list[str]:
        return sorted([key async for key in self.state.scan(prefix)])

    async def assert_legacy_only(self) -> None:
        """Only legacy names in the raw store, and nothing of ours in the v2 bucket."""
        keys = await self.keys()
        assert all(k.startswith(LEGACY_PREFIXES) for k in keys), keys
        assert await self.keys("voice_v2") == []
        if self.s3 is not None:
            client = self.s3.client()
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if "voice-v2-files" in names:
                listed = client.list_objects_v2(Bucket="voice-v2-files", Prefix="voice/")
                assert listed.get("KeyCount", 0) == 0
        else:
            assert self.root is not None
            assert [p.name for p in self.root.iterdir()] == ["voice-files"]


async def _empty_bucket(objects: ObjectStorage) -> None:
    for info in [i async for i in objects.list("")]:
        await objects.delete(info.key)


@pytest.fixture(params=["sqlite-local", "redis-s3"])
async def legacy(
    request: pytest.FixtureRequest, tmp_path: Path, pool: InferencePool
) -> AsyncIterator[Harness]:
    s3: SeaweedS3 | None = None
    root: Path | None = None
    if request.param == "redis-s3":
        redis = request.getfixturevalue("clean_redis")
        s3 = request.getfixturevalue("s3_server")
        state = open_state_store(redis.url)
        objects = open_object_storage(
            s3.storage_url(), "voice-files", access_key=s3.access_key, secret_key=s3.secret_key, lifecycle=()
        )
    else:
        root = tmp_path / "objects"
        state = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
        objects = open_object_storage(f"file://{root}", "voice-files", signing_key=SIGNING_KEY, lifecycle=())
    await objects.ensure_bucket()
    await _empty_bucket(objects)  # the S3 server lives for the whole session
    backend = ReferenceLegacyBackend(state, objects, pool)
    try:
        yield Harness(request.param, backend, state, objects, s3, root)
    finally:
        await backend.aclose()
        if s3 is not None:
            await _empty_bucket(objects)
        await objects.aclose()
        await state.aclose()


async def test_stt_uploads_the_input_then_caches_the_transcript(legacy: Harness, clips: Clips) -> None:
    backend = legacy.backend
    assert isinstance(backend, LegacyVoiceBackend)
    result = await backend.transcribe(clips.a, "auto", agent_id=AGENT, user_id=USER, filename="voice_1.ogg")
    assert heard(SENTENCE_A, result.text), result.text
    assert result.provider_used == STT_PROVIDER and result.cached is False
    assert result.language == "en" and result.confidence is not None
    assert result.duration_seconds is not None and result.duration_seconds > 1.0

    # The input, in the bucket: extension from the bytes (wav), not the file name; audio/mpeg anyway.
    stored = await legacy.objects_under("voice/")
    assert len(stored) == 1
    match = re.fullmatch(key_re(AGENT, USER, ".wav"), stored[0].key)
    assert match, stored[0].key
    body, info = await legacy.objects.get(stored[0].key)
    assert body == clips.a
    assert info.content_type == "audio/mpeg"
    meta = dict(info.metadata)
    uploaded = datetime.fromisoformat(meta.pop("upload-time"))
    assert uploaded.tzinfo is None and f"{uploaded:%Y/%m/%d/%H}" == match.group(1)
    assert meta == {
        "agent-id": AGENT,
        "user-id": USER,
        "original-filename": "voice_1.ogg",
        "custom-type": "voice_input",
    }

    # The cache entry: md5 of size:mime:provider, VoiceProcessingResult.dict() as json.dumps wrote it.
    key = md5_key(len(clips.a), "none")
    assert await legacy.keys("stt_cache:") == [key]
    raw = await legacy.state.get(key)
    assert raw is not None
    value = json.loads(raw)
    assert list(value) == JSON_FIELDS
    assert raw == json.dumps(value).encode("ascii")  # ensure_ascii, ", " and ": " separators
    assert value["success"] is True and value["text"] == result.text
    assert value["audio_url"] is None and value["audio_data"] is None and value["error_message"] is None
    assert value["provider_used"] is None  # no provider configured
    assert isinstance(value["processing_time"], float) and value["processing_time"] > 0
    assert value["metadata"]["model"] == "tiny.en" and value["metadata"]["file_format"] == "wav"
    assert value["metadata"]["file_size"] == len(clips.a)
    ttl = await legacy.state.ttl(key)
    assert ttl is not None and 86400 - TTL_SLACK_S < ttl <= 86400

    # The same audio again: answered from the cache, and uploaded again all the same.
    again = await backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    assert again.cached is True and again.text == result.text and again.language == "en"
    assert len(await legacy.objects_under("voice/")) == 2
    await legacy.assert_legacy_only()


async def test_equal_sized_recordings_collide(legacy: Harness, clips: Clips) -> None:
    first = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    assert heard(SENTENCE_A, first.text)
    # Another recording, another agent and user, the same byte length: the legacy's bug answers it.
    other = await legacy.backend.transcribe(clips.b, agent_id="agent_other_99887766", user_id="user-7")
    assert other.cached is True and other.text == first.text
    assert not heard(SENTENCE_B, other.text)
    # The B recording really says B: under another first provider (another key) it is transcribed.
    await legacy.backend.put_agent_settings("agent_openai_55667788", {"providers": [{"provider": "openai"}]})
    fresh_b = await legacy.backend.transcribe(clips.b, agent_id="agent_openai_55667788", user_id=USER)
    assert fresh_b.cached is False and heard(SENTENCE_B, fresh_b.text), fresh_b.text
    # A different size misses.
    fresh_c = await legacy.backend.transcribe(clips.c, agent_id=AGENT, user_id=USER)
    assert fresh_c.cached is False and heard(SENTENCE_A, fresh_c.text)
    size = len(clips.a)
    expected = [md5_key(size, "none"), md5_key(size, "openai"), md5_key(len(clips.c), "none")]
    assert await legacy.keys("stt_cache:") == sorted(expected)
    assert len(await legacy.objects_under("voice/")) == 4  # every input was stored
    await legacy.assert_legacy_only()


async def test_agent_settings_shape_the_cache(legacy: Harness, clips: Clips) -> None:
    settings = {
        "enabled": True,
        "cache_ttl_hours": 2,
        "intent_keywords": ["голос", "скажи"],
        # providers[0] in list order decides the key, not the lowest priority.
        "providers": [{"provider": "yandex", "priority": 2}, {"provider": "openai", "priority": 1}],
    }
    await legacy.backend.put_agent_settings(AGENT, settings)
    raw_settings = await legacy.state.get(f"agent_voice_settings:{AGENT}")
    assert raw_settings == json.dumps(settings).encode("ascii")
    assert b"\\u0433\\u043e\\u043b\\u043e\\u0441" in raw_settings  # Cyrillic as json.dumps escapes it
    settings_ttl = await legacy.state.ttl(f"agent_voice_settings:{AGENT}")
    assert settings_ttl is not None and 3600 - TTL_SLACK_S < settings_ttl <= 3600

    result = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    key = md5_key(len(clips.a), "yandex")
    assert await legacy.keys("stt_cache:") == [key]
    raw = await legacy.state.get(key)
    assert raw is not None and json.loads(raw)["provider_used"] == "yandex"
    assert json.loads(raw)["text"] == result.text
    ttl = await legacy.state.ttl(key)
    assert ttl is not None and 7200 - TTL_SLACK_S < ttl <= 7200
    await legacy.assert_legacy_only()


async def test_cache_disabled_writes_no_entry(legacy: Harness, clips: Clips) -> None:
    await legacy.backend.put_agent_settings(AGENT, {"enabled": True, "cache_enabled": False})
    first = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    second = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    assert heard(SENTENCE_A, first.text)
    assert first.cached is False and second.cached is False
    assert await legacy.keys("stt_cache:") == []
    assert len(await legacy.objects_under("voice/")) == 2  # the inputs are stored all the same
    await legacy.assert_legacy_only()


async def test_read_only_serves_but_writes_nothing(legacy: Harness, clips: Clips) -> None:
    """The sunset's read_only phase: answers as before; no object, no cache entry, no settings."""
    await legacy.backend.put_agent_settings(AGENT, {"enabled": True})
    before_keys, before_objects = await legacy.keys(), await legacy.objects_under()
    legacy.backend.read_only = lambda: True
    first = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    second = await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    speech = await legacy.backend.synthesize("Read only now.", "en", agent_id=AGENT, user_id=USER)
    await legacy.backend.put_agent_settings("other-agent", {"enabled": True})
    assert heard(SENTENCE_A, first.text) and second.cached is False and speech.audio
    assert speech.object_key is None
    assert await legacy.keys() == before_keys and await legacy.objects_under() == before_objects
    assert legacy.backend.skipped_writes == 6  # 2 uploads, 2 cache entries, 1 upload, 1 settings
    legacy.backend.read_only = lambda: False
    await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER)
    assert len(await legacy.objects_under("voice/")) == len(before_objects) + 1


async def test_tts_returns_audio_and_stores_it_as_mp3(legacy: Harness) -> None:
    text = "Hello from the legacy voice service."
    speech = await legacy.backend.synthesize(text, "en", "female", agent_id=AGENT, user_id=USER)
    assert speech.provider_used == TTS_PROVIDER
    assert speech.format == "mp3" and speech.content_type == "audio/mpeg"
    container, seconds = probe(speech.audio)
    assert container == "mp3" and seconds > 0.5
    assert speech.duration_seconds is not None and speech.duration_seconds > 0.5
    assert speech.object_key is not None
    assert re.fullmatch(key_re(AGENT, USER, ".mp3"), speech.object_key)
    body, info = await legacy.objects.get(speech.object_key)
    assert body == speech.audio and info.content_type == "audio/mpeg"
    meta = dict(info.metadata)
    assert meta["custom-type"] == "tts_output" and meta["custom-text_length"] == str(len(text))
    assert re.fullmatch(r"response_\d+\.mp3", meta["original-filename"])
    assert meta["agent-id"] == AGENT and meta["user-id"] == USER

    # Another format comes back as asked, and is stored under .mp3 / audio/mpeg like the legacy did.
    wav = await legacy.backend.synthesize(
        "Привет, как дела?", "ru", agent_id=AGENT, user_id=USER, format="wav"
    )
    assert wav.format == "wav" and wav.audio[:4] == b"RIFF" and wav.object_key is not None
    assert wav.object_key.endswith(".mp3")
    body, info = await legacy.objects.get(wav.object_key)
    assert body == wav.audio and info.content_type == "audio/mpeg"
    assert await legacy.keys() == []  # TTS writes nothing to the state store
    await legacy.assert_legacy_only()


async def test_non_ascii_ids_fail_like_minio_and_store_nothing(legacy: Harness, clips: Clips) -> None:
    with pytest.raises(ProviderError, match="only US-ASCII") as stt:
        await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id="пользователь")
    assert not isinstance(stt.value, ProviderUnavailable)
    with pytest.raises(ProviderError, match="only US-ASCII"):
        await legacy.backend.synthesize("hello", "en", agent_id="agent_помощник_1a2b3c4d", user_id=USER)
    with pytest.raises(ProviderError, match="only US-ASCII"):
        await legacy.backend.transcribe(clips.a, agent_id=AGENT, user_id=USER, filename="голос.ogg")
    assert await legacy.objects_under() == []
    assert await legacy.keys() == []


async def test_bad_input_is_the_requests_fault(legacy: Harness, clips: Clips) -> None:
    backend = legacy.backend
    # The legacy uploaded whatever arrived before looking at it; an empty download too.
    with pytest.raises(EmptyInput):
        await backend.transcribe(b"", agent_id=AGENT, user_id=USER)
    with pytest.raises(UnsupportedMediaType):
        await backend.transcribe(b"definitely not audio" * 10, agent_id=AGENT, user_id=USER, filename="x.ogg")
    names = [info.key.rsplit("/", 1)[1] for info in await legacy.objects_under("voice/")]
    # No magic number: the file name's extension, or none at all (the default name is "audio").
    assert sorted(n.partition(".")[2] for n in names) == ["", "ogg"]

    await backend.put_agent_settings(AGENT, {"enabled": True, "max_file_size_mb": 1})
    with pytest.raises(PayloadTooLarge):  # refused before the upload
        await backend.transcribe(b"RIFF" + bytes(1024 * 1024 + 10), agent_id=AGENT, user_id=USER)
    assert len(await legacy.objects_under("voice/")) == 2
    with pytest.raises(EmptyInput):
        await backend.synthesize("  ", agent_id=AGENT, user_id=USER)
    # tiny.en is English-only: the provider step fails, after the upload, like a failing provider.
    with pytest.raises(ProviderUnavailable, match="English only"):
        await backend.transcribe(clips.a, "ru", agent_id=AGENT, user_id=USER)
    assert len(await legacy.objects_under("voice/")) == 3
    await legacy.assert_legacy_only()


async def test_info_reports_available(legacy: Harness) -> None:
    await legacy.backend.load()
    info = await legacy.backend.info()
    assert info["available"] is True and info["reason"] is None
    assert info["whisper_loaded"] is True and info["bucket"] == "voice-files"
