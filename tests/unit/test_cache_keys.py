"""Cache keys carry everything that determines the answer, and nothing the legacy key got wrong."""

from __future__ import annotations

import asyncio

import pytest

from voxshift.core.cache_keys import SttCacheKey, TtsCacheKey, chain_signature, sha256_hex
from voxshift.services.voice.singleflight import SingleFlight


def stt(**overrides: object) -> str:
    base: dict[str, object] = {
        "providers": "whisper",
        "language": "ru",
        "audio_sha256": sha256_hex(b"a" * 100),
    }
    base.update(overrides)
    return SttCacheKey(**base).render()  # type: ignore[arg-type]


def test_same_size_different_audio_gets_different_keys() -> None:
    # The legacy key hashed size:mime:provider, so these two recordings shared a transcript.
    one, two = b"\x01" * 1000, b"\x02" * 1000
    assert len(one) == len(two)
    assert stt(audio_sha256=sha256_hex(one)) != stt(audio_sha256=sha256_hex(two))


def test_stt_key_changes_with_everything_that_changes_the_answer() -> None:
    base = stt()
    variants = [
        stt(providers="openai"),
        stt(language="en"),
        stt(language=None),
        stt(task="translate"),
        stt(word_timestamps=True),
        stt(prompt="names: Ivan"),
        stt(temperature=0.4),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert stt() == base  # deterministic


def test_stt_key_layout() -> None:
    digest = sha256_hex(b"x")
    key = SttCacheKey("whisper+openai", None, digest).render()
    assert key.startswith(f"cache:stt:whisper+openai:auto:{digest}:")


def test_tts_key_changes_with_provider_language_voice_format_text_speed() -> None:
    def tts(**overrides: object) -> str:
        base: dict[str, object] = {
            "providers": "piper",
            "language": "en",
            "voice": "alloy",
            "format": "mp3",
            "text_sha256": sha256_hex("hello"),
        }
        base.update(overrides)
        return TtsCacheKey(**base).render()  # type: ignore[arg-type]

    variants = [
        tts(providers="espeak"),
        tts(language="ru"),
        tts(voice="nova"),
        tts(voice=None),
        tts(format="wav"),
        tts(text_sha256=sha256_hex("hello!")),
        tts(speed=1.5),
    ]
    assert len({tts(), *variants}) == len(variants) + 1
    assert tts().startswith("cache:tts:piper:en:alloy:mp3:")


def test_key_parts_cannot_smuggle_separators_or_glob_characters() -> None:
    assert chain_signature(["whi:sper", "open*ai"]) == "whi_sper+open_ai"
    key = TtsCacheKey("piper", "en", "a:b*c", "mp3", sha256_hex("t")).render()
    assert "*" not in key and key.count(":") == 7


async def test_single_flight_computes_once_for_identical_concurrent_calls() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    tasks = [asyncio.create_task(flight.run("k", compute)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert [r for r, _ in results] == [42] * 10
    assert sum(shared for _, shared in results) == 9
    assert flight.in_flight() == 0


async def test_single_flight_shares_failures_and_then_retries() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def fail() -> int:
        await gate.wait()
        raise ValueError("boom")

    tasks = [asyncio.create_task(flight.run("k", fail)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)

    async def ok() -> int:
        return 7

    assert await flight.run("k", ok) == (7, False)  # a failure is not remembered


async def test_single_flight_follower_cancel_does_not_cancel_leader() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def compute() -> int:
        await gate.wait()
        return 1

    leader = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    gate.set()
    assert await leader == (1, False)
