"""The legacy → v2 settings conversion: every field of the four legacy models, the lookup quirk, the
Redis cache comparison, and that every converted document passes v2's schema.

A replica of the legacy pydantic models (lax mode, unknown fields ignored, the range checks as
after-validators, like its ``@validator``s) is the oracle for "what the legacy accepted and read".
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from voxshift.core.sunset.settings import (
    LEGACY_DEFAULTS,
    LEGACY_FIELDS,
    MIXIN_PATH,
    ORCHESTRATOR_PATH,
    Finding,
    SettingsConversion,
    convert_agent_config,
    convert_voice_settings,
    json_diff,
)
from voxshift.core.sunset.settings_cache import compare_settings_cache
from voxshift.schemas.agent_settings import validate_agent_settings
from voxshift.services.sunset.settings_check import check_agent_config, check_conversion, check_voice_settings

MISSING: Any = object()
BASE = {
    "VoiceProviderConfig": {"provider": "openai"},
    "STTConfig": {"model": "whisper-1"},
    "TTSConfig": {"model": "tts-1", "voice": "alloy"},
}
PREFIX = {
    "VoiceSettings": "",
    "VoiceProviderConfig": "providers[0].",
    "STTConfig": "providers[0].stt_config.",
    "TTSConfig": "providers[0].tts_config.",
}


def legacy_with(model: str, field: str, value: Any) -> dict[str, Any]:
    """A legacy voice_settings whose ``model``.``field`` is ``value`` (MISSING: left out)."""
    leaf = dict(BASE.get(model, {}))
    if value is MISSING:
        leaf.pop(field, None)
    else:
        leaf[field] = value
    if model == "VoiceSettings":
        return leaf
    if model == "VoiceProviderConfig":
        return {"providers": [leaf]}
    key = "stt_config" if model == "STTConfig" else "tts_config"
    return {"providers": [{"provider": "openai", key: leaf}]}


def read(document: dict[str, Any], model: str, field: str) -> Any:
    node: Any = document
    if model != "VoiceSettings":
        node = node["providers"][0]
    if model in ("STTConfig", "TTSConfig"):
        node = node["stt_config" if model == "STTConfig" else "tts_config"]
    return node[field]


def assert_v2_valid(result: SettingsConversion) -> None:
    # v2's schema takes the document as is, and gives back exactly the same document.
    assert result.document is not None
    assert validate_agent_settings(result.document).to_json() == result.document
    assert check_conversion(result) == result


ALL_FIELDS = [(m, f) for m, fields in LEGACY_FIELDS.items() for f in fields]
DEFAULTED = [(m, f) for m, f in ALL_FIELDS if f in LEGACY_DEFAULTS[m]]
REQUIRED = [(m, f) for m, f in ALL_FIELDS if f not in LEGACY_DEFAULTS[m]]

# A valid non-default value per field (the value kept), and invalid values with the rule broken.
VALID: dict[tuple[str, str], Any] = {
    ("VoiceSettings", "enabled"): True,
    ("VoiceSettings", "intent_detection_mode"): "always",
    ("VoiceSettings", "intent_keywords"): ["скажи вслух", "voice"],
    ("VoiceSettings", "auto_stt"): False,
    ("VoiceSettings", "auto_tts_on_keywords"): False,
    ("VoiceSettings", "max_file_size_mb"): 100,
    ("VoiceSettings", "cache_enabled"): False,
    ("VoiceSettings", "cache_ttl_hours"): 168,
    ("VoiceSettings", "rate_limit_per_minute"): 1,
    ("VoiceSettings", "providers"): [
        {
            "provider": "yandex",
            "priority": 3,
            "fallback_enabled": True,
            "stt_config": None,
            "tts_config": None,
            "custom_settings": {},
        }
    ],
    ("VoiceProviderConfig", "provider"): "google",
    ("VoiceProviderConfig", "priority"): -5,
    ("VoiceProviderConfig", "stt_config"): {**LEGACY_DEFAULTS["STTConfig"], "model": "general:rc"},
    ("VoiceProviderConfig", "tts_config"): {**LEGACY_DEFAULTS["TTSConfig"], "model": "jane", "voice": "jane"},
    ("VoiceProviderConfig", "fallback_enabled"): False,
    ("VoiceProviderConfig", "custom_settings"): {"folder_id": "b1g", "nested": {"a": [1, None]}},
    ("STTConfig", "enabled"): False,
    ("STTConfig", "model"): "latest_long",
    ("STTConfig", "language"): "en-US",
    ("STTConfig", "max_duration"): 600,
    ("STTConfig", "enable_word_time_offsets"): True,
    ("STTConfig", "enable_automatic_punctuation"): False,
    ("STTConfig", "enable_profanity_filter"): True,
    ("STTConfig", "audio_channel_count"): 2,
    ("STTConfig", "sample_rate_hertz"): 48000,
    ("STTConfig", "custom_params"): {"x": "y"},
    ("TTSConfig", "enabled"): False,
    ("TTSConfig", "model"): "tts-1-hd",
    ("TTSConfig", "voice"): "ru-RU-Wavenet-A",
    ("TTSConfig", "language"): "ru",
    ("TTSConfig", "speed"): 0.25,
    ("TTSConfig", "pitch"): -20.0,
    ("TTSConfig", "volume_gain_db"): -6.5,
    ("TTSConfig", "audio_format"): "ogg",
    ("TTSConfig", "sample_rate"): 48000,
    ("TTSConfig", "custom_params"): {"emotion": "good"},
}
INVALID: dict[tuple[str, str], list[tuple[Any, str]]] = {
    ("VoiceSettings", "enabled"): [("maybe", "must be true or false"), (2, "must be true or false")],
    ("VoiceSettings", "intent_detection_mode"): [("Keywords", "must be one of keywords, always, disabled")],
    ("VoiceSettings", "intent_keywords"): [("голос", "must be a list"), (None, "must be a list")],
    ("VoiceSettings", "auto_stt"): [(None, "must be true or false")],
    ("VoiceSettings", "auto_tts_on_keywords"): [([], "must be true or false")],
    ("VoiceSettings", "max_file_size_mb"): [
        (0, "between 1 and 100, got 0"),
        (101, "got 101"),
        (2.5, "integer"),
    ],
    ("VoiceSettings", "cache_enabled"): [("", "must be true or false")],
    ("VoiceSettings", "cache_ttl_hours"): [
        (0, "between 1 and 168"),
        (169, "between 1 and 168"),
        ("1d", "integer"),
    ],
    ("VoiceSettings", "rate_limit_per_minute"): [(0, "between 1 and 100"), (1000, "between 1 and 100")],
    ("VoiceSettings", "providers"): [({"provider": "openai"}, "must be a list"), (None, "must be a list")],
    ("VoiceProviderConfig", "provider"): [
        ("OpenAI", "must be one of openai, google, yandex"),
        ("whisper", "must be one of"),
        (None, "must be a string"),
    ],
    ("VoiceProviderConfig", "priority"): [("first", "integer"), (1.5, "integer")],
    ("VoiceProviderConfig", "stt_config"): [
        ("whisper-1", "must be a JSON object"),
        ([], "must be a JSON object"),
    ],
    ("VoiceProviderConfig", "tts_config"): [(True, "must be a JSON object")],
    ("VoiceProviderConfig", "fallback_enabled"): [("sometimes", "must be true or false")],
    ("VoiceProviderConfig", "custom_settings"): [
        ([], "must be a JSON object"),
        (None, "must be a JSON object"),
    ],
    ("STTConfig", "enabled"): [(None, "must be true or false")],
    ("STTConfig", "model"): [("whisper-base", "must be one of"), (1, "must be a string")],
    ("STTConfig", "language"): [(7, "must be a string"), (None, "must be a string")],
    ("STTConfig", "max_duration"): [(0, "between 1 and 600, got 0"), (601, "got 601")],
    ("STTConfig", "enable_word_time_offsets"): [("nope", "must be true or false")],
    ("STTConfig", "enable_automatic_punctuation"): [(0.5, "must be true or false")],
    ("STTConfig", "enable_profanity_filter"): [({}, "must be true or false")],
    ("STTConfig", "audio_channel_count"): [("two", "integer")],
    ("STTConfig", "sample_rate_hertz"): [
        (11025, "must be one of 8000, 16000, 22050, 44100, 48000, got 11025")
    ],
    ("STTConfig", "custom_params"): [("x=y", "must be a JSON object")],
    ("TTSConfig", "enabled"): [("enabled", "must be true or false")],
    ("TTSConfig", "model"): [("piper", "must be one of"), ("TTS-1", "must be one of")],
    ("TTSConfig", "voice"): [(None, "must be a string"), (["alloy"], "must be a string")],
    ("TTSConfig", "language"): [(False, "must be a string")],
    ("TTSConfig", "speed"): [
        (0.2, "between 0.25 and 4, got 0.2"),
        (9, "got 9"),
        ("fast", "must be a number"),
    ],
    ("TTSConfig", "pitch"): [(-21, "between -20 and 20"), (20.5, "between -20 and 20")],
    ("TTSConfig", "volume_gain_db"): [("loud", "must be a number"), (None, "must be a number")],
    ("TTSConfig", "audio_format"): [("m4a", "must be one of mp3, opus, aac, flac, wav, pcm, ogg")],
    ("TTSConfig", "sample_rate"): [("fast", "integer"), (22050.5, "integer")],
    ("TTSConfig", "custom_params"): [(["a"], "must be a JSON object")],
}


def test_tables_cover_every_legacy_field() -> None:
    assert set(VALID) == set(ALL_FIELDS) == set(INVALID)
    assert len(ALL_FIELDS) == 10 + 6 + 10 + 10


@pytest.mark.parametrize(("model", "field"), DEFAULTED, ids=[f"{m}.{f}" for m, f in DEFAULTED])
def test_missing_field_takes_the_legacy_default(model: str, field: str) -> None:
    result = convert_voice_settings(legacy_with(model, field, MISSING))
    assert result.verdict == "convertible"  # a default is what the legacy ran with: nothing to decide
    assert result.document is not None
    assert read(result.document, model, field) == LEGACY_DEFAULTS[model][field]
    assert (
        Finding(
            "defaulted",
            PREFIX[model] + field,
            LEGACY_DEFAULTS[model][field],
            "missing; the legacy default, which the legacy used",
        )
        in result.findings
    )
    assert_v2_valid(result)


@pytest.mark.parametrize(("model", "field"), REQUIRED, ids=[f"{m}.{f}" for m, f in REQUIRED])
def test_missing_required_field_is_invalid(model: str, field: str) -> None:
    raw = legacy_with(model, field, MISSING)
    result = convert_voice_settings(raw)
    assert (result.verdict, result.document, result.legacy) == ("invalid", None, raw)
    assert Finding("invalid", PREFIX[model] + field, None, "required field is missing") in result.findings


@pytest.mark.parametrize(("model", "field"), ALL_FIELDS, ids=[f"{m}.{f}" for m, f in ALL_FIELDS])
def test_valid_value_is_kept(model: str, field: str) -> None:
    value = VALID[(model, field)]
    assert value != LEGACY_DEFAULTS[model].get(field, MISSING)
    result = convert_voice_settings(legacy_with(model, field, value))
    assert result.verdict == "convertible", result.findings
    assert result.document is not None
    assert read(result.document, model, field) == value
    assert not [f for f in result.findings if f.path == PREFIX[model] + field]
    assert_v2_valid(result)


INVALID_CASES = [(m, f, v, rule) for (m, f), cases in INVALID.items() for v, rule in cases]


@pytest.mark.parametrize(
    ("model", "field", "value", "rule"), INVALID_CASES, ids=[f"{m}.{f}={v!r}" for m, f, v, _ in INVALID_CASES]
)
def test_invalid_value_is_reported_with_its_path_and_kept(
    model: str, field: str, value: Any, rule: str
) -> None:
    raw = legacy_with(model, field, value)
    result = convert_voice_settings(raw)
    assert (result.verdict, result.document) == ("invalid", None)
    assert result.legacy == raw  # kept for a person, untouched
    [finding] = result.of_kind("invalid")
    assert (finding.path, finding.value) == (PREFIX[model] + field, value)
    assert rule in finding.reason


# --- the legacy replica: what the legacy really accepted ------------------------------------------
def _enum(name: str, values: tuple[str, ...]) -> Any:
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[misc]


class _STT(BaseModel):
    enabled: bool = True
    model: _enum(
        "STTModel",
        (
            "whisper-1",
            "latest_long",
            "latest_short",
            "command_and_search",
            "general",  # type: ignore[valid-type]
            "general:rc",
            "general:deprecated",
        ),
    )
    language: str = "ru-RU"
    max_duration: int = 60
    enable_word_time_offsets: bool = False
    enable_automatic_punctuation: bool = True
    enable_profanity_filter: bool = False
    audio_channel_count: int = 1
    sample_rate_hertz: int = 16000
    custom_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("max_duration")
    @classmethod
    def _d(cls, v: int) -> int:
        if v <= 0 or v > 600:
            raise ValueError("max_duration")
        return v

    @field_validator("sample_rate_hertz")
    @classmethod
    def _r(cls, v: int) -> int:
        if v not in [8000, 16000, 22050, 44100, 48000]:
            raise ValueError("sample_rate_hertz")
        return v


class _TTS(BaseModel):
    enabled: bool = True
    model: _enum(
        "TTSModel",
        (
            "tts-1",
            "tts-1-hd",
            "standard",
            "wavenet",
            "neural2",
            "polyglot",
            "studio",  # type: ignore[valid-type]
            "journey",
            "jane",
            "oksana",
            "omazh",
            "zahar",
            "ermil",
        ),
    )
    voice: str
    language: str = "ru-RU"
    speed: float = 1.0
    pitch: float = 0.0
    volume_gain_db: float = 0.0
    audio_format: _enum("AudioFormat", ("mp3", "opus", "aac", "flac", "wav", "pcm", "ogg")) = Field(  # type: ignore[valid-type]
        "mp3", validate_default=True
    )
    sample_rate: int = 22050
    custom_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("speed")
    @classmethod
    def _s(cls, v: float) -> float:
        if v < 0.25 or v > 4.0:
            raise ValueError("speed")
        return v

    @field_validator("pitch")
    @classmethod
    def _p(cls, v: float) -> float:
        if v < -20.0 or v > 20.0:
            raise ValueError("pitch")
        return v


class _Provider(BaseModel):
    provider: _enum("VoiceProvider", ("openai", "google", "yandex"))  # type: ignore[valid-type]
    priority: int = 1
    stt_config: _STT | None = None
    tts_config: _TTS | None = None
    fallback_enabled: bool = True
    custom_settings: dict[str, Any] = Field(default_factory=dict)


class _Legacy(BaseModel):
    enabled: bool = False
    intent_detection_mode: _enum("IntentDetectionMode", ("keywords", "always", "disabled")) = Field(  # type: ignore[valid-type]
        "keywords", validate_default=True
    )
    intent_keywords: list[str] = Field(default_factory=lambda: ["голос", "скажи", "произнеси", "озвучь"])
    auto_stt: bool = True
    auto_tts_on_keywords: bool = True
    max_file_size_mb: int = 25
    cache_enabled: bool = True
    cache_ttl_hours: int = 24
    rate_limit_per_minute: int = 10
    providers: list[_Provider] = Field(default_factory=list)

    @field_validator("max_file_size_mb", "rate_limit_per_minute")
    @classmethod
    def _m(cls, v: int) -> int:
        if v <= 0 or v > 100:
            raise ValueError("range")
        return v

    @field_validator("cache_ttl_hours")
    @classmethod
    def _c(cls, v: int) -> int:
        if v < 1 or v > 168:
            raise ValueError("range")
        return v


LAX_PROBES = [
    True,
    False,
    0,
    1,
    2,
    1.0,
    0.5,
    25.0,
    "1",
    "0",
    "yes",
    "Off",
    " yes ",
    "25",
    " 25 ",
    "25.0",
    "25.",
    "1_0",
    "_1",
    "1e1",
    "0.5",
    "٣",
    "nan",
    "",
    None,
    [],
    {},
    "ogg",
    "alloy",
    "general:rc",
]
SCALARS = [
    (m, f) for m, f in ALL_FIELDS if f not in ("providers", "stt_config", "tts_config", "intent_keywords")
]


@pytest.mark.parametrize(("model", "field"), SCALARS, ids=[f"{m}.{f}" for m, f in SCALARS])
def test_accepts_and_reads_values_exactly_as_the_legacy_did(model: str, field: str) -> None:
    for probe in LAX_PROBES:
        raw = legacy_with(model, field, probe)
        result = convert_voice_settings(raw)
        try:
            legacy = _Legacy.model_validate(raw).model_dump(mode="json")
        except ValidationError:
            assert result.verdict == "invalid", (probe, result.findings)
            continue
        assert result.document is not None, (probe, result.findings)
        got, want = read(result.document, model, field), read(legacy, model, field)
        if isinstance(want, float) and math.isnan(want):  # legacy ran with NaN; v2 cannot hold it
            assert result.of_kind("unmapped")[0].value == probe
            continue
        assert got == want and type(got) is type(want), (probe, got, want)
        coerced = result.of_kind("coerced")
        same_json = type(probe) is type(got) or (type(probe) is int and type(got) is float)  # 1 is 1.0
        assert bool(coerced) == (not same_json), (probe, coerced)
        assert_v2_valid(result)


# --- findings beyond one field --------------------------------------------------------------------
def test_unknown_fields_at_every_level_are_unmapped_with_their_values() -> None:
    raw = {
        "cache_ttl_hour": 48,  # a typo the legacy silently ignored
        "providers": [
            {
                "provider": "openai",
                "api_key_ref": "vault:x",
                "stt_config": {"model": "whisper-1", "temperature": 0.2},
                "tts_config": {"model": "tts-1", "voice": "nova", "style": {"a": 1}},
            }
        ],
    }
    result = convert_voice_settings(raw)
    assert result.verdict == "convertible_with_findings"
    unmapped = {f.path: f.value for f in result.of_kind("unmapped")}
    assert unmapped == {
        "cache_ttl_hour": 48,
        "providers[0].api_key_ref": "vault:x",
        "providers[0].stt_config.temperature": 0.2,
        "providers[0].tts_config.style": {"a": 1},
    }
    assert all("the legacy ignored it" in f.reason for f in result.of_kind("unmapped"))
    assert result.document is not None and result.document["cache_ttl_hours"] == 24  # what the legacy used
    assert_v2_valid(result)


def test_coerced_values_are_written_as_the_legacy_read_them_and_reported() -> None:
    result = convert_voice_settings(
        {
            "enabled": "yes",
            "max_file_size_mb": "50",
            "cache_ttl_hours": 12.0,
            "providers": [
                {
                    "provider": "openai",
                    "priority": True,
                    "tts_config": {"model": "tts-1", "voice": "echo", "speed": "1.5"},
                }
            ],
        }
    )
    assert result.verdict == "convertible_with_findings"
    assert {f.path: f.value for f in result.of_kind("coerced")} == {
        "enabled": "yes",
        "max_file_size_mb": "50",
        "cache_ttl_hours": 12.0,
        "providers[0].priority": True,
        "providers[0].tts_config.speed": "1.5",
    }
    doc = result.document
    assert doc is not None
    assert (doc["enabled"], doc["max_file_size_mb"], doc["cache_ttl_hours"]) == (True, 50, 12)
    assert (doc["providers"][0]["priority"], doc["providers"][0]["tts_config"]["speed"]) == (1, 1.5)
    assert_v2_valid(result)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("speed", float("nan"), "unmapped"),
        ("pitch", "NaN", "unmapped"),
        ("volume_gain_db", float("inf"), "unmapped"),
        ("speed", float("inf"), "invalid"),
    ],
)
def test_non_finite_numbers(field: str, value: Any, kind: str) -> None:
    result = convert_voice_settings(legacy_with("TTSConfig", field, value))
    [finding] = result.of_kind(kind)  # type: ignore[arg-type]
    assert finding.path == f"providers[0].tts_config.{field}"
    if kind == "unmapped":  # the legacy's ``v < lo or v > hi`` lets NaN through; JSON has no NaN
        assert result.document is not None
        assert read(result.document, "TTSConfig", field) == LEGACY_DEFAULTS["TTSConfig"][field]
        assert_v2_valid(result)


def test_providers_keep_list_order_whatever_their_priority() -> None:
    # The legacy tried providers by priority but keyed its STT cache on providers[0]: keep both facts.
    providers = [
        {"provider": "yandex", "priority": 3},
        {"provider": "openai", "priority": 1},
        {"provider": "google", "priority": 2},
        {"provider": "openai", "priority": 1},
    ]
    result = convert_voice_settings({"providers": providers})
    assert result.document is not None
    assert [(p["provider"], p["priority"]) for p in result.document["providers"]] == [
        ("yandex", 3),
        ("openai", 1),
        ("google", 2),
        ("openai", 1),
    ]
    assert_v2_valid(result)


def test_cyrillic_keywords_are_kept_exactly() -> None:
    keywords = ["голос", "Скажи", "произнеси ", "озвучь", "ё", "ﾃｽﾄ", "e\u0301"]
    cached = json.dumps({"intent_keywords": keywords})  # the legacy's ensure_ascii escapes
    assert "\\u0433" in cached
    for raw in ({"intent_keywords": keywords}, json.loads(cached)):
        result = convert_voice_settings(raw)
        assert result.document is not None and result.document["intent_keywords"] == keywords
        assert_v2_valid(result)


def test_keyword_that_is_not_a_string_is_invalid_at_its_index() -> None:
    result = convert_voice_settings({"intent_keywords": ["голос", 5]})
    assert result.verdict == "invalid"
    assert [(f.path, f.value) for f in result.of_kind("invalid")] == [("intent_keywords[1]", 5)]


def test_every_problem_of_a_row_is_reported_not_just_the_first() -> None:
    result = convert_voice_settings({"enabled": "?", "providers": [{"priority": 1}, "openai"]})
    assert [f.path for f in result.of_kind("invalid")] == ["enabled", "providers[0].provider", "providers[1]"]


@pytest.mark.parametrize("raw", [[], ["enabled"], "enabled", '{"enabled": true}', 0, 1.5, True])
def test_not_a_dict_is_invalid_and_kept(raw: Any) -> None:
    result = convert_voice_settings(raw)
    assert (result.verdict, result.document, result.legacy) == ("invalid", None, raw)
    [finding] = result.findings
    assert (finding.path, finding.value) == ("voice_settings", raw)
    assert "must be a JSON object" in finding.reason


def test_none_is_absent_and_empty_object_is_all_defaults() -> None:
    assert convert_voice_settings(None) == SettingsConversion("absent", None, (), None, None)
    result = convert_voice_settings({})
    assert result.verdict == "convertible" and len(result.of_kind("defaulted")) == 10
    assert result.document == validate_agent_settings({}).to_json()


# --- the two lookup paths -------------------------------------------------------------------------
ON = {"enabled": True}
OFF = {"enabled": False}


@pytest.mark.parametrize(
    ("config", "verdict", "source", "lookup_findings"),
    [
        ({"simple": {"settings": {"voice_settings": ON}}}, "convertible", ORCHESTRATOR_PATH, 0),
        (
            {"simple": {"settings": {"voice_settings": ON}}, "voice_settings": dict(ON)},
            "convertible",
            ORCHESTRATOR_PATH,
            0,
        ),
        (
            {"simple": {"settings": {"voice_settings": ON}}, "voice_settings": OFF},
            "convertible_with_findings",
            ORCHESTRATOR_PATH,
            1,
        ),
        ({"voice_settings": ON}, "convertible_with_findings", MIXIN_PATH, 1),
        (
            {"simple": {"settings": {"voice_settings": None}}, "voice_settings": ON},
            "convertible_with_findings",
            MIXIN_PATH,
            1,
        ),
        ({"simple": {"settings": {"model": "gpt"}}}, "absent", None, 0),
        ({"simple": ["settings"]}, "absent", None, 0),
        ({}, "absent", None, 0),
        ("not an object", "absent", None, 1),
        (None, "absent", None, 1),
        ({"simple": {"settings": {"voice_settings": "on"}}}, "invalid", ORCHESTRATOR_PATH, 0),
    ],
)
def test_lookup_paths(config: Any, verdict: str, source: str | None, lookup_findings: int) -> None:
    result = convert_agent_config(config)
    assert (result.verdict, result.source) == (verdict, source)
    assert len(result.of_kind("lookup")) == lookup_findings
    if result.document is not None:
        assert result.document["enabled"] is True  # the orchestrator's value wins when both exist
        assert_v2_valid(result)


def test_conflicting_lookup_keeps_the_other_value_in_the_report() -> None:
    result = convert_agent_config({"simple": {"settings": {"voice_settings": ON}}, "voice_settings": OFF})
    [finding] = result.of_kind("lookup")
    assert (finding.path, finding.value) == ("config_json.voice_settings", OFF)
    assert ORCHESTRATOR_PATH in finding.reason and "VoiceConfigMixin" in finding.reason


# --- the Redis settings cache ---------------------------------------------------------------------
ROW = {"enabled": True, "intent_keywords": ["голос"], "providers": [{"provider": "openai", "priority": 1}]}


@pytest.mark.parametrize(
    ("cached", "row", "status", "paths"),
    [
        (None, ROW, "absent", ()),
        (json.dumps(ROW), ROW, "fresh", ()),
        (json.dumps(ROW).encode(), ROW, "fresh", ()),
        (json.dumps({**ROW, "enabled": False}), ROW, "stale", ("enabled",)),
        (json.dumps({**ROW, "enabled": 1}), ROW, "stale", ("enabled",)),  # 1 is not true in JSON
        (
            json.dumps({**ROW, "providers": [{"provider": "yandex", "priority": 1}, {}]}),
            ROW,
            "stale",
            ("providers[0].provider", "providers[1]"),
        ),
        (
            json.dumps({"enabled": True, "cache_ttl_hours": 5}),
            ROW,
            "stale",
            ("intent_keywords", "providers", "cache_ttl_hours"),
        ),
        (json.dumps(ROW), None, "stale", ("voice_settings",)),
        (b"\xff\xfe{", ROW, "corrupt", ()),
        ('{"enabled": tru', ROW, "corrupt", ()),
        ("[1, 2]", ROW, "corrupt", ()),
        ("", ROW, "corrupt", ()),
    ],
)
def test_cache_comparison(cached: Any, row: Any, status: str, paths: tuple[str, ...]) -> None:
    result = compare_settings_cache(cached, row)
    assert (result.status, result.differing_paths) == (status, paths)
    assert result.to_json()["status"] == status and result.detail


def test_json_diff_treats_equal_numbers_as_equal() -> None:
    assert json_diff({"a": 1, "b": [float("nan")]}, {"a": 1.0, "b": [float("nan")]}) == []
    assert json_diff({"a": 1}, {"a": "1"}) == ["a"]


# --- the services-layer check ---------------------------------------------------------------------
def test_check_validates_with_the_v2_schema() -> None:
    providers = VALID[("VoiceSettings", "providers")]
    ok = check_agent_config({"simple": {"settings": {"voice_settings": {"providers": providers}}}})
    assert ok.verdict == "convertible" and ok.document is not None
    assert check_voice_settings({"enabled": 3}).verdict == "invalid"
    assert check_voice_settings(None).verdict == "absent"


def test_a_document_v2_refuses_becomes_an_invalid_finding() -> None:
    # A drift between the two schemas must stop the row, not slip through.
    drifted = SettingsConversion(
        "convertible",
        {"providers": [{"provider": "google", "priority": "1"}]},
        (),
        ORCHESTRATOR_PATH,
        {"x": 1},
    )
    result = check_conversion(drifted)
    assert (result.verdict, result.document, result.legacy) == ("invalid", None, {"x": 1})
    [finding] = result.findings
    assert (finding.path, finding.value) == ("providers[0].priority", "1")
    assert finding.reason.startswith("v2 schema: providers[0].priority: must be an integer")
