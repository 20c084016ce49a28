"""The legacy's names and values as pure functions: cache keys, object keys, format detection,
metadata, settings; and the input checks every legacy backend shares."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

import pytest

from voxshift.errors import EmptyInput, InvalidRequest, TextTooLong
from voxshift.legacy.base import check_format, check_text, language_code, voice_for_style
from voxshift.legacy.reference_keys import (
    LegacyVoiceSettings,
    check_minio_metadata,
    detect_audio_format,
    object_extension,
    object_key,
    parse_voice_settings,
    processing_result,
    processing_result_value,
    settings_key,
    settings_value,
    stt_cache_key,
    upload_metadata,
)

WHEN = datetime(2025, 11, 3, 7, 5, 9, 123456)
UID = uuid.UUID("0b6f8a52-3c1e-4d2b-9f00-5a7c1e2d3b4f")


# --- stt_cache keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "provider", "digest"),
    [  # computed independently: printf '48213:audio/mpeg:openai' | md5sum
        (48213, "openai", "f2467afaf621ec2897ccaaeab9f5acbc"),
        (0, "none", "e3f87529cb554f9261471bd18358e03e"),
        (1000, "yandex", "ba1f3ff348ac6e3a40616fbb21d734d8"),
    ],
)
def test_stt_cache_key_is_md5_of_size_mime_provider(size: int, provider: str, digest: str) -> None:
    assert stt_cache_key(size, "audio/mpeg", provider) == f"stt_cache:{digest}"


def test_stt_cache_key_ignores_everything_but_size_mime_provider() -> None:
    # The collision bug: nothing about the content or the agent goes into the key.
    assert stt_cache_key(5000, "audio/mpeg", "none") == stt_cache_key(5000, "audio/mpeg", "none")
    assert stt_cache_key(5000, "audio/mpeg", "none") != stt_cache_key(5001, "audio/mpeg", "none")
    assert stt_cache_key(5000, "audio/mpeg", "none") != stt_cache_key(5000, "audio/mpeg", "openai")


def test_processing_result_has_exactly_the_legacy_fields_in_order() -> None:
    result = processing_result(
        success=True,
        text="привет",
        provider_used="openai",
        processing_time=0.25,
        metadata={"model": "tiny.en"},
    )
    assert list(result) == [
        "success", "text", "audio_url", "audio_data",
        "provider_used", "processing_time", "error_message", "metadata",
    ]  # fmt: skip
    raw = processing_result_value(result)
    assert raw == json.dumps(result).encode("ascii")
    assert (
        b'"text": "\\u043f\\u0440\\u0438\\u0432\\u0435\\u0442"' in raw
    )  # json.dumps' escapes and separators
    assert json.loads(raw)["audio_data"] is None


# --- object keys and formats ------------------------------------------------------------------------


def test_object_key_layout() -> None:
    key = object_key("agent_bot_1a2b3c4d", "user-42", WHEN, UID, "ogg")
    assert key == "voice/agent_bot_1a2b3c4d/user-42/2025/11/03/07/0b6f8a52-3c1e-4d2b-9f00-5a7c1e2d3b4f.ogg"
    assert object_key("a", "u", WHEN, UID, None) == f"voice/a/u/2025/11/03/07/{UID}"


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"ID3\x04\x00" + bytes(20), "", "mp3"),
        (bytes(6) + b"ftyp" + bytes(20), "", "mp3"),  # the legacy's offset 6, not MP4's 4
        (b"\x00\x00\x00\x20ftypM4A " + bytes(20), "", None),  # a real M4A: not recognised by bytes
        (b"\x00\x00\x00\x20ftypM4A " + bytes(20), "voice.m4a", "aac"),
        (b"OggS\x00\x02" + bytes(30), "voice.mp3", "ogg"),  # the bytes win over the name
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20), "", "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(20), "", None),
        (b"fLaC\x00\x00\x00\x22" + bytes(20), "", "flac"),
        (b"OpusHead" + bytes(20), "", "opus"),
        (b"\xff\xfb\x90\x00" + bytes(20), "audio_1700000000.MP3", "mp3"),  # extension, case-insensitive
        (b"garbage bytes here", "voice.xyz", None),
        (b"", "voice.ogg", None),  # empty: no format at all, even with a name
    ],
)
def test_detect_audio_format(data: bytes, filename: str, expected: str | None) -> None:
    assert detect_audio_format(data, filename) == expected


def test_object_extension_falls_back_to_the_file_name_as_written() -> None:
    assert object_extension("wav", "voice.ogg") == "wav"
    assert object_extension(None, "voice.OGG") == "OGG"  # split(".")[-1], case kept
    assert object_extension(None, "a.b.webm") == "webm"
    assert object_extension(None, "audio") is None


def test_upload_metadata_and_the_minio_ascii_rule() -> None:
    metadata = upload_metadata(
        "agent_x", "42", "response_1700000000.mp3", WHEN, {"type": "tts_output", "text_length": 17}
    )
    assert metadata == {
        "agent-id": "agent_x",
        "user-id": "42",
        "original-filename": "response_1700000000.mp3",
        "upload-time": "2025-11-03T07:05:09.123456",
        "custom-type": "tts_output",
        "custom-text_length": "17",
    }
    check_minio_metadata(metadata)
    bad = upload_metadata("agent_x", "пользователь", "voice.ogg", WHEN, {"type": "voice_input"})
    with pytest.raises(ValueError, match="unsupported metadata value пользователь; only US-ASCII"):
        check_minio_metadata(bad)


# --- agent settings ---------------------------------------------------------------------------------


def test_settings_key_and_value() -> None:
    settings = {"enabled": True, "intent_keywords": ["голос"], "providers": []}
    assert settings_key("agent_x") == "agent_voice_settings:agent_x"
    assert (
        settings_value(settings)
        == b'{"enabled": true, "intent_keywords": ["\\u0433\\u043e\\u043b\\u043e\\u0441"], "providers": []}'
    )


def test_parse_voice_settings_defaults_and_first_provider() -> None:
    assert parse_voice_settings({}) == LegacyVoiceSettings()
    defaults = LegacyVoiceSettings()
    assert (defaults.cache_enabled, defaults.cache_ttl_s, defaults.max_file_bytes) == (
        True,
        86400,
        25 * 1024 * 1024,
    )
    assert defaults.first_provider == "none"
    parsed = parse_voice_settings(
        {
            "enabled": True,
            "cache_ttl_hours": 168,
            "cache_enabled": False,
            "max_file_size_mb": 5,
            "unknown_field": "ignored, as pydantic did",
            "providers": [{"provider": "google", "priority": 9}, {"provider": "openai", "priority": 1}],
        }
    )
    assert parsed == LegacyVoiceSettings(True, 5, False, 168, "google")  # list order, not priority


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"cache_ttl_hours": 0}, "cache_ttl_hours"),
        ({"cache_ttl_hours": 169}, "cache_ttl_hours"),
        ({"max_file_size_mb": True}, "max_file_size_mb"),
        ({"cache_enabled": "yes"}, "cache_enabled"),
        ({"rate_limit_per_minute": 1000}, "rate_limit_per_minute"),
        ({"providers": {"provider": "openai"}}, "providers"),
        ({"providers": [{"provider": "whisper"}]}, "providers[0].provider"),
    ],
)
def test_parse_voice_settings_names_the_bad_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field) + ":"):
        parse_voice_settings(raw)


# --- shared input checks ----------------------------------------------------------------------------


def test_shared_input_checks() -> None:
    with pytest.raises(EmptyInput):
        check_text(" \n ")
    with pytest.raises(TextTooLong):
        check_text("x" * 4097)
    check_text("x" * 4096)
    with pytest.raises(InvalidRequest, match="unsupported format"):
        check_format("ogg")
    assert (
        language_code("auto") is None and language_code("ru-RU") == "ru" and language_code("English") == "en"
    )
    with pytest.raises(InvalidRequest) as info:
        language_code("not a language")
    assert info.value.param == "language"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("natural", "alloy"),
        ("male", "onyx"),
        ("Female", "nova"),
        ("shimmer", "shimmer"),
        ("whisper-ish", "alloy"),
    ],
)
def test_voice_for_style(style: str, expected: str) -> None:
    assert voice_for_style(style, "alloy") == expected
