"""Per-agent voice settings: every legacy default and range, strictness, one-line errors with paths."""

from __future__ import annotations

from typing import Any

import pytest

from voxshift.core.agent_settings import parse_path, set_path, validate_agent_id
from voxshift.errors import InvalidRequest
from voxshift.schemas.agent_settings import AgentVoiceSettings, validate_agent_settings

# The legacy project's shipped examples (voice_schemas.py DEFAULT_*_CONFIG), as JSON documents.
LEGACY_OPENAI = {
    "provider": "openai",
    "priority": 1,
    "stt_config": {"model": "whisper-1", "language": "ru", "max_duration": 120},
    "tts_config": {"model": "tts-1", "voice": "alloy", "language": "ru", "speed": 1.0, "audio_format": "mp3"},
}
LEGACY_GOOGLE = {
    "provider": "google",
    "priority": 2,
    "stt_config": {
        "model": "latest_short",
        "language": "ru-RU",
        "max_duration": 60,
        "enable_automatic_punctuation": True,
    },
    "tts_config": {
        "model": "neural2",
        "voice": "ru-RU-Wavenet-A",
        "language": "ru-RU",
        "audio_format": "mp3",
    },
}
LEGACY_YANDEX = {
    "provider": "yandex",
    "priority": 3,
    "stt_config": {"model": "general", "language": "ru-RU", "max_duration": 60},
    "tts_config": {"model": "jane", "voice": "jane", "language": "ru-RU", "audio_format": "ogg"},
}


def rejects(data: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_agent_settings(data)
    message = info.value.message
    assert "\n" not in message
    assert message.startswith(f"{info.value.param}: ") or info.value.param == "settings"
    return info.value


def with_provider(**fields: Any) -> dict[str, Any]:
    return {"providers": [{"provider": "openai", **fields}]}


def test_an_empty_document_gets_every_legacy_default() -> None:
    settings = validate_agent_settings({})
    assert settings.to_json() == {
        "enabled": False,
        "intent_detection_mode": "keywords",
        "intent_keywords": ["голос", "скажи", "произнеси", "озвучь"],
        "auto_stt": True,
        "auto_tts_on_keywords": True,
        "max_file_size_mb": 25,
        "cache_enabled": True,
        "cache_ttl_hours": 24,
        "rate_limit_per_minute": 10,
        "providers": [],
    }
    assert settings == AgentVoiceSettings()


def test_provider_stt_and_tts_defaults_match_the_legacy_schema() -> None:
    settings = validate_agent_settings(
        with_provider(stt_config={"model": "whisper-1"}, tts_config={"model": "tts-1", "voice": "alloy"})
    )
    provider = settings.to_json()["providers"][0]
    assert provider == {
        "provider": "openai",
        "priority": 1,
        "fallback_enabled": True,
        "custom_settings": {},
        "stt_config": {
            "enabled": True,
            "model": "whisper-1",
            "language": "ru-RU",
            "max_duration": 60,
            "enable_word_time_offsets": False,
            "enable_automatic_punctuation": True,
            "enable_profanity_filter": False,
            "audio_channel_count": 1,
            "sample_rate_hertz": 16000,
            "custom_params": {},
        },
        "tts_config": {
            "enabled": True,
            "model": "tts-1",
            "voice": "alloy",
            "language": "ru-RU",
            "speed": 1.0,
            "pitch": 0.0,
            "volume_gain_db": 0.0,
            "audio_format": "mp3",
            "sample_rate": 22050,
            "custom_params": {},
        },
    }
    bare = validate_agent_settings({"providers": [{"provider": "yandex"}]}).providers[0]
    assert bare.stt_config is None and bare.tts_config is None


def test_the_legacy_shipped_provider_examples_validate_and_round_trip() -> None:
    document = {"enabled": True, "providers": [LEGACY_OPENAI, LEGACY_GOOGLE, LEGACY_YANDEX]}
    settings = validate_agent_settings(document)
    assert [p.provider for p in settings.providers] == ["openai", "google", "yandex"]
    assert settings.providers[0].stt_config is not None
    assert settings.providers[0].stt_config.max_duration == 120
    assert settings.providers[2].tts_config is not None
    assert settings.providers[2].tts_config.audio_format == "ogg"
    assert validate_agent_settings(settings.to_json()) == settings


def test_the_example_message_from_the_issue() -> None:
    error = rejects(with_provider(tts_config={"model": "tts-1", "voice": "alloy", "speed": 9}))
    assert error.param == "providers[0].tts_config.speed"
    assert error.message == "providers[0].tts_config.speed: must be between 0.25 and 4.0, got 9"


@pytest.mark.parametrize(
    ("field", "low", "high", "bad_low", "bad_high", "bounds"),
    [
        ("max_file_size_mb", 1, 100, 0, 101, "1 and 100"),
        ("cache_ttl_hours", 1, 168, 0, 169, "1 and 168"),
        ("rate_limit_per_minute", 1, 100, 0, 101, "1 and 100"),
    ],
)
def test_top_level_ranges(field: str, low: int, high: int, bad_low: int, bad_high: int, bounds: str) -> None:
    assert getattr(validate_agent_settings({field: low}), field) == low
    assert getattr(validate_agent_settings({field: high}), field) == high
    for bad in (bad_low, bad_high, -5):
        error = rejects({field: bad})
        assert error.param == field
        assert error.message == f"{field}: must be between {bounds}, got {bad}"


@pytest.mark.parametrize(
    ("config", "field", "good", "bad", "expected"),
    [
        ("stt_config", "max_duration", [1, 600], [0, 601], "must be between 1 and 600"),
        ("tts_config", "speed", [0.25, 4.0, 2], [0.24, 4.01, 0], "must be between 0.25 and 4.0"),
        ("tts_config", "pitch", [-20.0, 20, 0.5], [-20.5, 21], "must be between -20.0 and 20.0"),
        (
            "stt_config",
            "sample_rate_hertz",
            [8000, 16000, 22050, 44100, 48000],
            [11025, 0],
            "must be one of 8000, 16000, 22050, 44100, 48000",
        ),
    ],
)
def test_provider_config_ranges(
    config: str, field: str, good: list[float], bad: list[float], expected: str
) -> None:
    base = {"stt_config": {"model": "whisper-1"}, "tts_config": {"model": "tts-1", "voice": "alloy"}}
    for value in good:
        document = with_provider(**{**base, config: {**base[config], field: value}})
        validate_agent_settings(document)
    for value in bad:
        error = rejects(with_provider(**{**base, config: {**base[config], field: value}}))
        assert error.param == f"providers[0].{config}.{field}"
        assert expected in error.message


@pytest.mark.parametrize(
    ("document", "param", "needle"),
    [
        ({"intent_detection_mode": "sometimes"}, "intent_detection_mode", "'keywords', 'always', 'disabled'"),
        ({"providers": [{"provider": "azure"}]}, "providers[0].provider", 'got "azure"'),
        (with_provider(stt_config={"model": "nova-2"}), "providers[0].stt_config.model", "'whisper-1'"),
        (
            with_provider(tts_config={"model": "eleven", "voice": "x"}),
            "providers[0].tts_config.model",
            "'tts-1'",
        ),
        (
            with_provider(tts_config={"model": "tts-1", "voice": "x", "audio_format": "m4a"}),
            "providers[0].tts_config.audio_format",
            "'mp3', 'opus', 'aac', 'flac', 'wav', 'pcm', 'ogg'",
        ),
    ],
)
def test_enumerations_name_the_allowed_values(document: dict[str, Any], param: str, needle: str) -> None:
    error = rejects(document)
    assert error.param == param
    assert needle in error.message


@pytest.mark.parametrize(
    ("document", "param"),
    [
        ({"enabeld": True}, "enabeld"),
        ({"cache_ttl_hour": 5}, "cache_ttl_hour"),
        ({"providers": [{"provider": "openai", "weight": 2}]}, "providers[0].weight"),
        (with_provider(stt_config={"model": "whisper-1", "lang": "ru"}), "providers[0].stt_config.lang"),
        (
            with_provider(tts_config={"model": "tts-1", "voice": "a", "rate": 1}),
            "providers[0].tts_config.rate",
        ),
    ],
)
def test_unknown_fields_are_rejected_at_every_level(document: dict[str, Any], param: str) -> None:
    error = rejects(document)
    assert error.param == param
    assert "unknown field" in error.message and "expected one of:" in error.message


def test_unknown_field_lists_the_fields_of_its_own_level() -> None:
    error = rejects(with_provider(tts_config={"model": "tts-1", "voice": "a", "rate": 1}))
    assert (
        "speed" in error.message and "sample_rate" in error.message and "cache_ttl_hours" not in error.message
    )


@pytest.mark.parametrize(
    ("document", "param"),
    [
        ({"providers": [{}]}, "providers[0].provider"),
        (with_provider(stt_config={}), "providers[0].stt_config.model"),
        (with_provider(tts_config={"model": "tts-1"}), "providers[0].tts_config.voice"),
    ],
)
def test_required_fields(document: dict[str, Any], param: str) -> None:
    error = rejects(document)
    assert error.param == param
    assert error.message == f"{param}: required field is missing"


@pytest.mark.parametrize(
    ("document", "param", "message"),
    [
        ({"enabled": "true"}, "enabled", 'must be true or false, got "true"'),
        ({"max_file_size_mb": "25"}, "max_file_size_mb", 'must be an integer, got "25"'),
        ({"cache_ttl_hours": 2.5}, "cache_ttl_hours", "must be an integer, got 2.5"),
        ({"intent_keywords": "голос"}, "intent_keywords", "must be a list, got a string"),
        ({"intent_keywords": ["ok", 3]}, "intent_keywords[1]", "must be a string, got 3"),
        ({"providers": {"provider": "openai"}}, "providers", "must be a list, got an object"),
        ({"providers": ["openai"]}, "providers[0]", "must be a JSON object, got a string"),
        (with_provider(stt_config=[]), "providers[0].stt_config", "must be a JSON object, got a list"),
        (with_provider(priority=True), "providers[0].priority", "must be an integer, got true"),
    ],
)
def test_types_are_strict(document: dict[str, Any], param: str, message: str) -> None:
    error = rejects(document)
    assert error.param == param
    assert error.message == f"{param}: {message}"


def test_a_document_that_is_not_an_object() -> None:
    values: list[object] = [[], "enabled", None, 3]
    for value in values:
        error = rejects(value)
        assert error.param == "settings"
        assert "must be a JSON object" in error.message


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    error = rejects({"enabled": "yes", "cache_ttl_hours": 0, "bogus": 1})
    assert error.param == "enabled"
    assert error.message.endswith("(and 2 more problems)")


def test_v2_engines_and_legacy_providers_are_accepted() -> None:
    document = {
        "providers": [
            {"provider": "whisper", "stt_config": {"model": "whisper-base"}},
            {"provider": "piper", "tts_config": {"model": "piper", "voice": "joe"}},
            {"provider": "rhvoice", "tts_config": {"model": "rhvoice", "voice": "aleksandr-hq"}},
            {"provider": "espeak", "tts_config": {"model": "espeak-ng", "voice": "ru"}},
            {"provider": "openai"},
            {"provider": "yandex"},
            {"provider": "google"},
        ]
    }
    names = [p.provider for p in validate_agent_settings(document).providers]
    assert names == ["whisper", "piper", "rhvoice", "espeak", "openai", "yandex", "google"]
    error = rejects({"providers": [{"provider": "rhvoice", "stt_config": {"model": "general"}}]})
    assert error.param == "providers[0].stt_config" and "text-to-speech only" in error.message


def test_one_sided_engines_refuse_the_other_side() -> None:
    error = rejects({"providers": [{"provider": "whisper", "tts_config": {"model": "tts-1", "voice": "a"}}]})
    assert error.param == "providers[0].tts_config"
    assert "speech-to-text only" in error.message
    error = rejects(
        {"providers": [{"provider": "ok"}, {"provider": "espeak", "stt_config": {"model": "general"}}]}
    )
    assert error.param == "providers[0].provider"  # the first problem wins
    error = rejects(
        {"providers": [{"provider": "openai"}, {"provider": "espeak", "stt_config": {"model": "general"}}]}
    )
    assert error.param == "providers[1].stt_config"


def test_providers_are_tried_by_ascending_priority_list_order_breaking_ties() -> None:
    stt = {"model": "general"}
    tts = {"model": "jane", "voice": "jane"}
    settings = validate_agent_settings(
        {
            "providers": [
                {"provider": "yandex", "priority": 3, "stt_config": stt, "tts_config": tts},
                {"provider": "openai", "priority": 1, "stt_config": {"model": "whisper-1"}},
                {
                    "provider": "google",
                    "priority": 1,
                    "stt_config": {**stt, "enabled": False},
                    "tts_config": tts,
                },
                {"provider": "whisper", "priority": 1, "stt_config": {"model": "whisper-base"}},
            ]
        }
    )
    assert [p.provider for p in settings.stt_providers()] == ["openai", "whisper", "yandex"]
    assert [p.provider for p in settings.tts_providers()] == ["google", "yandex"]


@pytest.mark.parametrize(
    "agent_id",
    [
        "agent_support_bot_1a2b3c4d",
        "agent_агент_поддержки_9f8e7d6c",
        "agent_ops:eu@acme.io_00ff00ff",
        "agent_🤖.bot_deadbeef",
        "a",
        "x" * 128,
        "агент" * 25,  # 125 characters, 250 UTF-8 bytes: the limit counts characters
    ],
)
def test_agent_ids_like_the_legacy_ones_are_accepted(agent_id: str) -> None:
    assert validate_agent_id(agent_id) == agent_id


@pytest.mark.parametrize(
    ("agent_id", "needle"), [("", "non-empty"), ("x" * 129, "at most 128"), ("a\x00b", "NUL")]
)
def test_bad_agent_ids(agent_id: str, needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_agent_id(agent_id)
    assert info.value.param == "agent_id"
    assert needle in info.value.message


def test_set_path_builds_missing_objects_and_appends_to_lists() -> None:
    doc: dict[str, Any] = {"enabled": False}
    doc = set_path(doc, "enabled", True)
    doc = set_path(doc, "providers[0].provider", "openai")
    doc = set_path(doc, "providers[0].tts_config.voice", "nova")
    doc = set_path(doc, "providers.0.tts_config.model", "tts-1")
    doc = set_path(doc, "providers[1]", {"provider": "whisper"})
    assert doc == {
        "enabled": True,
        "providers": [
            {"provider": "openai", "tts_config": {"voice": "nova", "model": "tts-1"}},
            {"provider": "whisper"},
        ],
    }
    validate_agent_settings(doc)


def test_set_path_does_not_touch_its_input() -> None:
    original = {"providers": [{"provider": "openai"}]}
    set_path(original, "providers[0].priority", 5)
    assert original == {"providers": [{"provider": "openai"}]}


@pytest.mark.parametrize(
    ("path", "param", "needle"),
    [
        ("providers[5].priority", "providers[5]", "index out of range (the list has 1 item(s))"),
        ("providers.provider", "providers.provider", "is a list, use [index]"),
        ("enabled.deep", "enabled.deep", "enabled is a boolean, not an object"),
        ("cache_enabled[0]", "cache_enabled[0]", "not an object"),
        ("[0].x", "[0].x", "not a field path"),
        ("providers[x]", "providers[x]", "bad list index"),
    ],
)
def test_set_path_errors_name_the_path(path: str, param: str, needle: str) -> None:
    doc = {"enabled": True, "cache_enabled": True, "providers": [{"provider": "openai"}]}
    with pytest.raises(InvalidRequest) as info:
        set_path(doc, path, 1)
    assert info.value.param == param
    assert needle in info.value.message


def test_parse_path_accepts_both_index_spellings() -> None:
    assert parse_path("providers[0].tts_config.speed") == ["providers", 0, "tts_config", "speed"]
    assert parse_path("providers.0.tts_config.speed") == ["providers", 0, "tts_config", "speed"]
    assert parse_path("intent_keywords[2]") == ["intent_keywords", 2]
