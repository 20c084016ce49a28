"""The real OpenAI and Yandex provider classes against local fakes of the vendors' HTTP APIs: the
wire format each sends, and how each maps voxshift requests and vendor answers."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.providers import tone
from tests.fakes.yandex_server import FakeYandex
from voxshift.config import Settings
from voxshift.engines.base import Availability, STTRequest, Transcript, TTSRequest
from voxshift.engines.openai import OpenAISTT, OpenAITTS
from voxshift.engines.yandex import YandexSTT, YandexTTS
from voxshift.errors import ProviderUnavailable

pytest_plugins = ["tests.fakes.fixtures"]  # oa, ya, http, settings_for


# --- OpenAI speech-to-text -------------------------------------------------------------------------
async def test_openai_transcribe_sends_the_documented_multipart_and_parses_verbose_json(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    audio = tone(2.0)
    stt = OpenAISTT(settings_for(), http)
    result = await stt.transcribe(STTRequest(audio=audio, language="en", prompt="Voxshift", temperature=0.2))

    assert result.text == oa.transcript
    assert (result.language, result.language_probability) == ("en", 1.0)
    assert result.duration_s == pytest.approx(2.0)
    assert [s.text.strip() for s in result.segments] == [
        "Hello from the fake server.",
        "It speaks OpenAI's wire format.",
    ]
    assert result.segments[0].start == 0.0 and result.segments[-1].end == pytest.approx(2.0)
    assert result.segments[0].avg_logprob == -0.25 and result.segments[0].words is None
    assert 0.7 < result.confidence < 0.8

    [sent] = oa.requests
    assert (sent.method, sent.path) == ("POST", "/v1/audio/transcriptions")
    assert sent.headers["authorization"] == f"Bearer {oa.api_key}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.form == {
        "model": ["whisper-1"], "response_format": ["verbose_json"], "temperature": ["0.2"],
        "language": ["en"], "prompt": ["Voxshift"],
    }  # fmt: skip
    upload = sent.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("audio.wav", "audio/wav", audio.data)


async def test_openai_maps_the_detected_language_name_to_a_code(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    oa.detected_language = "russian"
    result = await OpenAISTT(settings_for(), http).transcribe(STTRequest(audio=tone()))
    assert (result.language, result.language_probability) == ("ru", 0.0)
    assert "language" not in oa.requests[0].form


async def test_openai_translate_uses_the_translations_endpoint(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    result = await OpenAISTT(settings_for(), http).transcribe(
        STTRequest(audio=tone(), language="ru", task="translate")
    )
    assert result.language == "en"
    [sent] = oa.requests
    assert sent.path == "/v1/audio/translations"
    assert "language" not in sent.form and sent.form["model"] == ["whisper-1"]


async def test_openai_word_timestamps_are_requested_and_attached_to_segments(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    result = await OpenAISTT(settings_for(), http).transcribe(
        STTRequest(audio=tone(), language="en", word_timestamps=True)
    )
    assert oa.requests[0].form["timestamp_granularities[]"] == ["word", "segment"]
    words = [[w.word for w in s.words or ()] for s in result.segments]
    assert words == [
        ["Hello", "from", "the", "fake", "server"],
        ["It", "speaks", "OpenAI's", "wire", "format"],
    ]
    first = result.segments[0].words or ()
    assert first[0].probability == pytest.approx(math.exp(-0.25))
    assert all(s.start <= w.start <= w.end <= s.end + 1e-6 for s in result.segments for w in s.words or ())


async def test_openai_gpt4o_transcribe_asks_for_plain_json(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    stt = OpenAISTT(settings_for(openai_stt_model="gpt-4o-transcribe"), http)
    result = await stt.transcribe(STTRequest(audio=tone(1.5), language="en"))
    assert oa.requests[0].form["response_format"] == ["json"]
    assert (result.text, result.segments, result.duration_s) == (oa.transcript, (), 1.5)


# --- OpenAI text-to-speech -------------------------------------------------------------------------
async def test_openai_synthesize_asks_for_24khz_pcm(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    text = "Hello there, this is a test."
    speech = await OpenAITTS(settings_for(), http).synthesize(TTSRequest(text=text, voice="nova", speed=1.25))
    assert speech.sample_rate == 24_000
    assert speech.duration_s == pytest.approx(0.065 * len(text) / 1.25, abs=0.01)
    assert np.abs(np.frombuffer(speech.pcm, "<i2")).max() > 1000  # real signal, not silence
    [sent] = oa.requests
    assert (sent.path, sent.headers["authorization"]) == ("/v1/audio/speech", f"Bearer {oa.api_key}")
    assert sent.json == {
        "model": "tts-1",
        "input": text,
        "voice": "nova",
        "response_format": "pcm",
        "speed": 1.25,
    }


@pytest.mark.parametrize(
    ("voice", "speed", "sent_voice", "sent_speed"),
    [
        ("alena", 1.0, "nova", 1.0),
        ("ermil", 10.0, "echo", 4.0),
        (None, 0.1, "alloy", 0.25),
        ("nobody", 1, "alloy", 1),
    ],
)
async def test_openai_maps_other_providers_voices_and_clamps_speed(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings],
    voice: str | None, speed: float, sent_voice: str, sent_speed: float,
) -> None:  # fmt: skip
    await OpenAITTS(settings_for(), http).synthesize(TTSRequest(text="hi", voice=voice, speed=speed))
    assert (oa.requests[0].json["voice"], oa.requests[0].json["speed"]) == (sent_voice, sent_speed)


# --- Yandex speech-to-text -------------------------------------------------------------------------
async def test_yandex_recognize_sends_lpcm_with_documented_query(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    audio = tone(1.0)
    result = await YandexSTT(settings_for(), http).transcribe(STTRequest(audio=audio, language="en"))
    assert result == Transcript(text="привет мир", language="en", language_probability=1.0, duration_s=1.0)

    [sent] = ya.requests
    assert (sent.method, sent.path) == ("POST", "/speech/v1/stt:recognize")
    assert sent.headers["authorization"] == f"Api-Key {ya.api_key}"
    assert sent.query == {"lang": "en-US", "topic": "general", "format": "lpcm", "sampleRateHertz": "16000"}
    received = np.frombuffer(sent.body, "<i2")
    assert received.size == audio.samples.size
    assert np.abs(received / 32767.0 - audio.samples).max() < 1e-4


@pytest.mark.parametrize(("language", "lang", "probability"), [(None, "ru-RU", 0.0), ("pt-BR", "pt-BR", 1.0)])
async def test_yandex_language_codes(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings],
    language: str | None, lang: str, probability: float,
) -> None:  # fmt: skip
    result = await YandexSTT(settings_for(), http).transcribe(STTRequest(audio=tone(), language=language))
    assert ya.requests[0].query["lang"] == lang
    assert (result.language, result.language_probability) == (lang[:2], probability)


async def test_yandex_iam_token_uses_bearer_and_folder_id(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    stt = YandexSTT(settings_for(yandex_api_key=ya.iam_token, yandex_folder_id=ya.folder_id), http)
    await stt.transcribe(STTRequest(audio=tone(), language="ru"))
    tts = YandexTTS(settings_for(yandex_api_key=ya.iam_token, yandex_folder_id=ya.folder_id), http)
    await tts.synthesize(TTSRequest(text="привет"))
    stt_sent, tts_sent = ya.requests
    assert stt_sent.headers["authorization"] == f"Bearer {ya.iam_token}"
    assert stt_sent.query["folderId"] == ya.folder_id and tts_sent.form["folderId"] == [ya.folder_id]

    no_folder = YandexSTT(settings_for(yandex_api_key=ya.iam_token), http)
    assert no_folder.info().availability == Availability(
        False, "VOXSHIFT_YANDEX_FOLDER_ID is not set (required with an IAM token)"
    )
    with pytest.raises(ProviderUnavailable):
        await no_folder.transcribe(STTRequest(audio=tone(), language="ru"))
    assert len(ya.requests) == 2


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (STTRequest(audio=tone(31.0), language="ru"), "at most 30 s"),
        (STTRequest(audio=tone(), language="ja"), "does not recognise language 'ja'"),
        (STTRequest(audio=tone(), language="ru", task="translate"), "cannot translate"),
    ],
    ids=["too-long", "unsupported-language", "translate"],
)
async def test_yandex_refuses_what_it_cannot_serve_without_the_network(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings],
    request_: STTRequest, reason: str,
) -> None:  # fmt: skip
    with pytest.raises(ProviderUnavailable, match=reason) as caught:
        await YandexSTT(settings_for(), http).transcribe(request_)
    assert caught.value.retryable is True
    assert ya.requests == []


# --- Yandex text-to-speech -------------------------------------------------------------------------
async def test_yandex_synthesize_posts_the_documented_form(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    speech = await YandexTTS(settings_for(), http).synthesize(TTSRequest(text="Привет, мир!", language="ru"))
    assert speech.sample_rate == 48_000
    assert speech.duration_s == pytest.approx(0.065 * len("Привет, мир!"), abs=0.01)
    [sent] = ya.requests
    assert (sent.path, sent.headers["authorization"]) == (
        "/speech/v1/tts:synthesize",
        f"Api-Key {ya.api_key}",
    )
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "text": ["Привет, мир!"], "lang": ["ru-RU"], "voice": ["alena"], "speed": ["1"],
        "format": ["lpcm"], "sampleRateHertz": ["48000"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("language", "voice", "lang", "sent_voice"),
    [("ru", "onyx", "ru-RU", "ermil"), ("ru", "shimmer", "ru-RU", "omazh"), ("ru", "zahar", "ru-RU", "zahar"),
     ("en", "nova", "en-US", "john"), ("de-DE", None, "de-DE", "lea")],
)  # fmt: skip
async def test_yandex_maps_languages_and_voices(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings],
    language: str, voice: str | None, lang: str, sent_voice: str,
) -> None:  # fmt: skip
    await YandexTTS(settings_for(), http).synthesize(TTSRequest(text="hello", language=language, voice=voice))
    assert (ya.requests[0].form["lang"], ya.requests[0].form["voice"]) == ([lang], [sent_voice])


async def test_yandex_splits_long_russian_text_to_fit_the_15kb_body(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    text = " ".join(f"Это предложение номер {i}, и оно написано по-русски." for i in range(80))
    assert len(text) < 5000  # a single request would still be over 15 KB once URL-encoded
    speech = await YandexTTS(settings_for(), http).synthesize(TTSRequest(text=text, speed=2.0))
    assert len(ya.requests) > 1
    assert all(len(r.body) <= 15 * 1024 for r in ya.requests)
    assert " ".join(r.form["text"][0] for r in ya.requests) == text
    assert speech.duration_s == pytest.approx(
        sum(0.065 * len(r.form["text"][0]) / 2 for r in ya.requests), abs=0.05
    )


async def test_yandex_tts_refuses_languages_without_a_voice(
    ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    with pytest.raises(ProviderUnavailable, match="no voice for language 'ja'"):
        await YandexTTS(settings_for(), http).synthesize(TTSRequest(text="こんにちは", language="ja"))
    assert ya.requests == []


async def test_a_provider_owns_and_closes_its_own_client(
    oa: FakeOpenAI, settings_for: Callable[..., Settings]
) -> None:
    tts = OpenAITTS(settings_for())
    assert (await tts.synthesize(TTSRequest(text="hi"))).pcm
    client = tts._client
    await tts.aclose()
    assert client is not None and client.is_closed


async def test_the_openai_sdk_accepts_the_fake_so_the_fake_speaks_the_wire_format(oa: FakeOpenAI) -> None:
    openai = pytest.importorskip("openai")
    assert "voxshift" not in (openai.__file__ or "")  # voxshift.engines.openai does not shadow the SDK
    client = openai.AsyncOpenAI(api_key=oa.api_key, base_url=oa.base_url, max_retries=0)
    try:
        verbose = await client.audio.transcriptions.create(
            model="whisper-1", file=("audio.wav", tone().data, "audio/wav"), response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )  # fmt: skip
        assert verbose.language == "english" and len(verbose.segments or []) == 2 and verbose.words
        speech = await client.audio.speech.create(
            model="tts-1", voice="alloy", input="hi", response_format="pcm"
        )
        assert len(speech.content) > 0
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
            await client.with_options(api_key="sk-nope").audio.speech.create(
                model="tts-1", voice="alloy", input="hi"
            )
    finally:
        await client.close()
